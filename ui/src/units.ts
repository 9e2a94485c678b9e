// Value formatting by unit. Pure functions.

const SI = [
  [1e15, 'P'],
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
] as const;

const BIN = [
  [2 ** 50, 'PiB'],
  [2 ** 40, 'TiB'],
  [2 ** 30, 'GiB'],
  [2 ** 20, 'MiB'],
  [2 ** 10, 'KiB'],
] as const;

/** The units a panel may declare. */
export const UNITS = ['short', 'none', 'percent', 'percentunit', 'bytes', 'seconds', 'ms', 'reqps', 'ops'] as const;

function trim(v: number, decimals?: number): string {
  if (decimals !== undefined) return v.toFixed(decimals);
  const a = Math.abs(v);
  const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return String(Number(v.toFixed(d)));
}

function short(v: number, decimals?: number): string {
  const a = Math.abs(v);
  for (const [size, suffix] of SI) if (a >= size) return trim(v / size, decimals) + suffix;
  if (a !== 0 && a < 0.001) return v.toExponential(2);
  return trim(v, decimals);
}

function duration(sec: number, decimals?: number): string {
  const a = Math.abs(sec);
  if (a === 0) return '0s';
  if (a < 1e-3) return trim(sec * 1e6, decimals) + 'µs';
  if (a < 1) return trim(sec * 1e3, decimals) + 'ms';
  if (a < 60) return trim(sec, decimals) + 's';
  if (a < 3600) return trim(sec / 60, decimals) + 'm';
  if (a < 86400) return trim(sec / 3600, decimals) + 'h';
  return trim(sec / 86400, decimals) + 'd';
}

/** Formats a value for display in `unit` (unknown units are appended as a suffix). */
export function formatValue(v: number | null | undefined, unit = 'short', decimals?: number): string {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  switch (unit) {
    case 'none':
      return decimals !== undefined ? v.toFixed(decimals) : String(v);
    case 'short':
    case '':
      return short(v, decimals);
    case 'percent':
      return trim(v, decimals) + '%';
    case 'percentunit':
      return trim(v * 100, decimals) + '%';
    case 'bytes': {
      const a = Math.abs(v);
      for (const [size, suffix] of BIN) if (a >= size) return trim(v / size, decimals) + ' ' + suffix;
      return trim(v, decimals) + ' B';
    }
    case 'seconds':
    case 's':
      return duration(v, decimals);
    case 'ms':
      return duration(v / 1000, decimals);
    case 'reqps':
      return short(v, decimals) + ' req/s';
    case 'ops':
      return short(v, decimals) + ' ops/s';
    default:
      return short(v, decimals) + ' ' + unit;
  }
}

/** A threshold step: from `value` upwards the colour is `color`. */
export interface Threshold {
  value: number;
  color: string;
}

/** The colour of `v` under ascending thresholds (the first applies below all). */
export function thresholdColor(v: number | null, thresholds: Threshold[] | undefined, fallback = ''): string {
  if (v === null || !thresholds || thresholds.length === 0) return fallback;
  const sorted = [...thresholds].sort((a, b) => a.value - b.value);
  let color = sorted[0].color;
  for (const t of sorted) if (v >= t.value) color = t.color;
  return color;
}

// Durations, relative ranges and step selection. Pure functions.

const UNITS: [string, number][] = [
  ['y', 365 * 24 * 3600_000],
  ['w', 7 * 24 * 3600_000],
  ['d', 24 * 3600_000],
  ['h', 3600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/** Parses a Prometheus duration (`1h30m`, `15s`, `500ms`) into milliseconds; null if invalid. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (s === '') return null;
  const re = /(\d+)(ms|y|w|d|h|m|s)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return null;
    const unit = UNITS.find(([u]) => u === m[2]);
    if (!unit) return null;
    total += Number(m[1]) * unit[1];
    pos = re.lastIndex;
  }
  return total;
}

/** Formats milliseconds as the shortest Prometheus duration (`90000` -> `1m30s`). */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const [u, size] of UNITS) {
    // Years and weeks only when exact, as Prometheus prints them.
    if ((u === 'y' || u === 'w') && rest % size !== 0) continue;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${u}`;
      rest -= n * size;
    }
  }
  return out;
}

/** The relative ranges offered by the range picker. */
export const RANGES = ['5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '2d', '7d', '14d', '30d'];

/** Steps the automatic selection rounds up to. */
const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map(
  (s) => s * 1000,
);

/** Most points a range query may return (Prometheus's limit is 11,000). */
export const MAX_POINTS = 11_000;

/**
 * Picks a step for a range of `rangeMs` drawn `widthPx` wide: about one point
 * per two pixels, never more than MAX_POINTS, rounded up to a nice step.
 */
export function autoStep(rangeMs: number, widthPx: number): number {
  const points = Math.max(10, Math.min(MAX_POINTS, Math.floor(widthPx / 2)));
  const raw = Math.max(1000, rangeMs / points);
  for (const s of NICE_STEPS) if (s >= raw) return s;
  return Math.ceil(raw / 86_400_000) * 86_400_000;
}

/** Formats a Unix time (ms) as `YYYY-MM-DD HH:MM:SS` in UTC or local time. */
export function formatTime(ms: number, utc = false): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  const [y, mo, da, h, mi, s] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  return `${y}-${p(mo)}-${p(da)} ${p(h)}:${p(mi)}:${p(s)}`;
}

/** "3m ago" style age of a time relative to `now` (both ms). */
export function formatAge(ms: number, now: number): string {
  const d = Math.max(0, now - ms);
  if (d < 1000) return `${Math.round(d)}ms ago`;
  const s = formatDuration(Math.round(d / 1000) * 1000);
  return `${s} ago`;
}

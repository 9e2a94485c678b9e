// The query explorer's state and its URL encoding. Pure functions.
//
// The URL holds every panel as `g<i>.<key>` parameters, as Prometheus's
// /graph does (`g0.expr=up&g0.tab=graph&g0.range=1h`), so a link reproduces
// the view.

import { formatDuration, parseDuration } from './time';

export type Tab = 'graph' | 'table';

/** One query panel of the explorer. */
export interface QueryPanel {
  expr: string;
  tab: Tab;
  /** Length of the range, ms. */
  range: number;
  /** End of the range, Unix ms; null means "now". */
  end: number | null;
  /** Resolution, ms; null means automatic. */
  step: number | null;
  stacked: boolean;
}

export const DEFAULT_RANGE = 3600_000;

export function defaultPanel(): QueryPanel {
  return { expr: '', tab: 'graph', range: DEFAULT_RANGE, end: null, step: null, stacked: false };
}

/** Encodes panels as URL query parameters (defaults are left out). */
export function encodePanels(panels: QueryPanel[]): string {
  const p = new URLSearchParams();
  panels.forEach((q, i) => {
    const k = `g${i}.`;
    p.set(k + 'expr', q.expr);
    p.set(k + 'tab', q.tab);
    p.set(k + 'range', formatDuration(q.range));
    if (q.end !== null) p.set(k + 'end', new Date(q.end).toISOString());
    if (q.step !== null) p.set(k + 'step', formatDuration(q.step));
    if (q.stacked) p.set(k + 'stacked', '1');
  });
  return p.toString();
}

function parseTime(s: string): number | null {
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

/**
 * Decodes panels from URL query parameters. Panels are numbered from 0 without
 * gaps; invalid values fall back to the defaults. At least one panel is returned.
 */
export function decodePanels(search: string): QueryPanel[] {
  const p = new URLSearchParams(search);
  const out: QueryPanel[] = [];
  for (let i = 0; ; i++) {
    const k = `g${i}.`;
    const expr = p.get(k + 'expr');
    if (expr === null) break;
    const q = defaultPanel();
    q.expr = expr;
    const tab = p.get(k + 'tab');
    // Prometheus's classic UI uses 0 (graph) and 1 (table).
    if (tab === 'table' || tab === '1') q.tab = 'table';
    const range = parseDuration(p.get(k + 'range') ?? '');
    if (range !== null && range > 0) q.range = range;
    const end = p.get(k + 'end');
    if (end) q.end = parseTime(end);
    const step = p.get(k + 'step');
    if (step) {
      const s = parseDuration(step) ?? (/^\d+(\.\d+)?$/.test(step) ? Number(step) * 1000 : null);
      if (s !== null && s > 0) q.step = s;
    }
    q.stacked = p.get(k + 'stacked') === '1';
    out.push(q);
  }
  return out.length > 0 ? out : [defaultPanel()];
}

/** The range in force for a panel at `now`: [start, end] in ms. */
export function panelWindow(q: QueryPanel, now: number): [number, number] {
  const end = q.end ?? now;
  return [end - q.range, end];
}

/** The panel after zooming to [from, to] (ms): the range becomes absolute. */
export function zoomed(q: QueryPanel, from: number, to: number): QueryPanel {
  const range = Math.max(1000, Math.round(to - from));
  return { ...q, range, end: Math.round(to), step: null };
}

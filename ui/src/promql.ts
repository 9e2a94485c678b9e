// What the PromQL input should complete at the cursor, and where a parse
// error points. Pure functions.

/** What to complete, and the text range [from, cursor) the choice replaces. */
export type Completion =
  | { kind: 'metric'; prefix: string; from: number }
  | { kind: 'label'; metric: string | null; prefix: string; from: number }
  | { kind: 'value'; metric: string | null; label: string; prefix: string; from: number; quote: boolean }
  | { kind: 'none' };

/** PromQL functions and keywords, completed beside metric names. */
export const FUNCTIONS = [
  'abs', 'absent', 'absent_over_time', 'avg', 'avg_over_time', 'bottomk', 'ceil', 'changes', 'clamp', 'clamp_max',
  'clamp_min', 'count', 'count_over_time', 'count_values', 'day_of_month', 'day_of_week', 'day_of_year',
  'days_in_month', 'delta', 'deriv', 'exp', 'floor', 'group', 'histogram_quantile', 'holt_winters', 'hour',
  'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln', 'log10', 'log2', 'max',
  'max_over_time', 'min', 'min_over_time', 'minute', 'month', 'predict_linear', 'present_over_time', 'quantile',
  'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort', 'sort_desc', 'sqrt', 'stddev',
  'stddev_over_time', 'stdvar', 'stdvar_over_time', 'sum', 'sum_over_time', 'time', 'timestamp', 'topk', 'vector',
  'year', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless',
];

const IDENT = /[a-zA-Z0-9_:]/;

/** Scans `text` up to `cursor` and says what is being typed there. */
export function completionContext(text: string, cursor: number): Completion {
  let inString: string | null = null;
  let stringStart = 0;
  let braceDepth = 0;
  let braceMetric: string | null = null;
  // Open parentheses, and whether each holds label names (by/without/on/...).
  const parens: boolean[] = [];
  let bracket = false;
  for (let i = 0; i < cursor; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === inString) inString = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      inString = c;
      stringStart = i + 1;
    } else if (c === '{') {
      braceDepth++;
      const before = text.slice(0, i).match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/);
      braceMetric = before ? before[1] : null;
    } else if (c === '}') {
      braceDepth = Math.max(0, braceDepth - 1);
    } else if (c === '(') {
      const before = text.slice(0, i).match(/([a-zA-Z_]+)\s*$/);
      parens.push(!!before && /^(by|without|on|ignoring|group_left|group_right)$/.test(before[1]));
    } else if (c === ')') {
      parens.pop();
    } else if (c === '[') {
      bracket = true;
    } else if (c === ']') {
      bracket = false;
    }
  }
  if (inString) {
    if (braceDepth === 0) return { kind: 'none' };
    const m = text.slice(0, stringStart - 1).match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/);
    if (!m) return { kind: 'none' };
    return { kind: 'value', metric: braceMetric, label: m[1], prefix: text.slice(stringStart, cursor), from: stringStart, quote: false };
  }
  if (bracket) return { kind: 'none' };
  let from = cursor;
  while (from > 0 && IDENT.test(text[from - 1])) from--;
  const prefix = text.slice(from, cursor);
  if (braceDepth > 0) {
    const before = text.slice(0, from);
    const op = before.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/);
    if (op) return { kind: 'value', metric: braceMetric, label: op[1], prefix, from, quote: true };
    if (/[{,]\s*$/.test(before)) return { kind: 'label', metric: braceMetric, prefix, from };
    return { kind: 'none' };
  }
  if (parens.length > 0 && parens[parens.length - 1]) {
    return { kind: 'label', metric: null, prefix, from };
  }
  if (/^[0-9]/.test(prefix)) return { kind: 'none' };
  if (prefix === '' && from > 0 && IDENT.test(text[from - 1] ?? '')) return { kind: 'none' };
  return { kind: 'metric', prefix, from };
}

/** Ranks candidates for a prefix: prefix matches first, then substring matches. */
export function rankCandidates(candidates: Iterable<string>, prefix: string, limit = 50): string[] {
  const p = prefix.toLowerCase();
  const starts: string[] = [];
  const contains: string[] = [];
  for (const c of candidates) {
    const l = c.toLowerCase();
    if (l.startsWith(p)) {
      if (c !== prefix) starts.push(c);
    } else if (p.length > 0 && l.includes(p)) contains.push(c);
  }
  starts.sort();
  contains.sort();
  return starts.concat(contains).slice(0, limit);
}

/**
 * The 0-based character offset a parse error points at, or null. Understands
 * Prometheus's `1:5: parse error: ...` (line:column, 1-based) and
 * `... at position 4` / `position 4`.
 */
export function errorOffset(message: string, expr: string): number | null {
  const lc = message.match(/(?:^|\s|")(\d+):(\d+)(?::|-\d+:)/);
  if (lc) {
    const line = Number(lc[1]);
    const col = Number(lc[2]);
    const lines = expr.split('\n');
    if (line < 1 || line > lines.length) return null;
    let off = 0;
    for (let i = 0; i < line - 1; i++) off += lines[i].length + 1;
    return Math.min(expr.length, off + col - 1);
  }
  const pos = message.match(/position (\d+)/);
  if (pos) return Math.min(expr.length, Number(pos[1]));
  return null;
}

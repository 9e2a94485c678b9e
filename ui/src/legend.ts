// Series names and legend templates. Pure functions.

export type Labels = Record<string, string>;

/** `name{a="1", b="2"}` as Prometheus prints a series (name omitted when absent). */
export function seriesName(labels: Labels): string {
  const name = labels.__name__ ?? '';
  const pairs = Object.keys(labels)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  if (pairs.length === 0) return name || '{}';
  return `${name}{${pairs.join(', ')}}`;
}

/**
 * Applies a legend template: `{{label}}` (spaces allowed inside the braces) is
 * replaced by the series' value of that label, empty when it has none. An
 * empty template gives the full series name.
 */
export function formatLegend(template: string | undefined, labels: Labels): string {
  if (!template) return seriesName(labels);
  return template.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, name: string) => labels[name] ?? '');
}

/** Replaces `$name` and `${name}` by the variables' values (unknown names stay). */
export function substituteVariables(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}|\$([a-zA-Z_][a-zA-Z0-9_]*)/g, (whole, a?: string, b?: string) => {
    const name = (a ?? b) as string;
    return name in vars ? vars[name] : whole;
  });
}

/** Escapes a label value for use inside a double-quoted PromQL regex matcher. */
export function regexEscape(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

// Dashboards: YAML files listed by the configuration (`dashboards:`),
// served as JSON by /api/v1/dashboards. Rows of panels (time series, stat,
// gauge, table), variables from label_values(...) as drop-downs, auto-refresh.

import { get, queryInstant, queryRange, sampleValue, type Labels } from './api';
import { Chart } from './chart';
import { h, mount, table } from './dom';
import { formatLegend, substituteVariables } from './legend';
import { alignMatrix } from './series';
import { autoStep, formatDuration, parseDuration, RANGES } from './time';
import { formatValue, thresholdColor, type Threshold } from './units';

export interface DashboardQuery {
  expr: string;
  legend?: string;
}
export interface DashboardPanel {
  title: string;
  type: 'timeseries' | 'stat' | 'gauge' | 'table';
  description?: string;
  unit?: string;
  decimals?: number;
  legend?: string;
  queries: DashboardQuery[];
  thresholds?: Threshold[];
  min?: number;
  max?: number;
  stacked?: boolean;
  width?: number;
}
export interface DashboardVariable {
  name: string;
  label?: string;
  query: string;
  include_all?: boolean;
}
export interface Dashboard {
  id: string;
  file: string;
  title: string;
  description?: string;
  refresh?: string;
  time?: string;
  variables: DashboardVariable[];
  rows: { title?: string; panels: DashboardPanel[] }[];
}
interface DashboardList {
  dashboards: Dashboard[];
  errors: { file: string; error: string }[];
}

/** The value a variable takes when "All" is chosen. */
export const ALL_VALUE = '.*';

/** Parses `label_values(selector, label)` or `label_values(label)`. */
export function parseLabelValues(query: string): { selector: string | null; label: string } | null {
  const m = /^\s*label_values\(\s*(?:(.*?)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(query);
  if (!m) return null;
  return { selector: m[1] ?? null, label: m[2] };
}

/** `/dashboards`: the list. */
export async function dashboardList(root: HTMLElement) {
  const data = await get<DashboardList>('api/v1/dashboards');
  mount(
    root,
    h('h1', 'Dashboards'),
    data.dashboards.length === 0 && data.errors.length === 0
      ? h('p.muted', 'No dashboards. List YAML files under `dashboards:` in the configuration file.')
      : h(
          'section.panel',
          table(
            ['Dashboard', 'File'],
            data.dashboards.map((d) => [h('a', { href: `dashboards/${encodeURIComponent(d.id)}` }, d.title), h('code', d.file)]),
          ),
        ),
    data.errors.map((e) => h('div.error', `${e.file}: ${e.error}`)),
  );
}

type PanelState = 'loading' | 'ok' | 'nodata' | 'error';

/** `/dashboards/<id>`: one dashboard. Returns a cleanup function. */
export async function dashboardView(root: HTMLElement, id: string): Promise<() => void> {
  const data = await get<DashboardList>('api/v1/dashboards');
  const dash = data.dashboards.find((d) => d.id === id);
  if (!dash) {
    const err = data.errors.find((e) => e.file.includes(id));
    mount(root, h('h1', 'Dashboard not found'), h('div.error', err ? `${err.file}: ${err.error}` : `No dashboard "${id}".`));
    return () => {};
  }
  const params = new URLSearchParams(location.search);
  let range = parseDuration(params.get('range') ?? dash.time ?? '1h') ?? 3600_000;
  let refresh = params.get('refresh') ?? dash.refresh ?? '';
  const values: Record<string, string> = {};
  const charts: Chart[] = [];
  let timer = 0;
  let seq = 0;

  const save = () => {
    const p = new URLSearchParams();
    p.set('range', formatDuration(range));
    if (refresh) p.set('refresh', refresh);
    for (const v of dash.variables) p.set(`var-${v.name}`, values[v.name] ?? '');
    history.replaceState(history.state, '', `${location.pathname}?${p}`);
  };

  const varBar = h('div.variables');
  const grid = h('div.rows');
  const rangeSel = h(
    'select',
    { 'aria-label': 'range', onchange: (e: Event) => ((range = parseDuration((e.target as HTMLSelectElement).value) ?? range), save(), void render()) },
    RANGES.map((r) => h('option', { value: r, selected: parseDuration(r) === range }, `last ${r}`)),
  );
  if (!RANGES.some((r) => parseDuration(r) === range)) rangeSel.prepend(h('option', { selected: true }, `last ${formatDuration(range)}`));
  const refreshSel = h(
    'select',
    {
      'aria-label': 'auto-refresh',
      onchange: (e: Event) => {
        refresh = (e.target as HTMLSelectElement).value;
        save();
        schedule();
      },
    },
    ['', '5s', '10s', '30s', '1m', '5m', '15m'].map((r) => h('option', { value: r, selected: r === refresh }, r ? `every ${r}` : 'no refresh')),
  );
  if (refresh && !['5s', '10s', '30s', '1m', '5m', '15m'].includes(refresh)) refreshSel.append(h('option', { value: refresh, selected: true }, `every ${refresh}`));

  const schedule = () => {
    clearInterval(timer);
    const ms = parseDuration(refresh);
    if (ms && ms > 0) timer = window.setInterval(() => !document.hidden && void render(), Math.max(1000, ms));
  };

  async function loadVariables() {
    const nodes: HTMLElement[] = [];
    for (const v of dash!.variables) {
      const lv = parseLabelValues(v.query);
      let opts: string[] = [];
      if (lv) {
        const selector = lv.selector ? substituteVariables(lv.selector, values) : null;
        opts = await get<string[]>(`api/v1/label/${encodeURIComponent(lv.label)}/values`, selector ? { 'match[]': selector } : undefined).catch(
          () => [],
        );
      }
      const wanted = params.get(`var-${v.name}`);
      const choices = v.include_all ? [ALL_VALUE, ...opts] : opts;
      values[v.name] = wanted !== null && choices.includes(wanted) ? wanted : (choices[0] ?? '');
      const sel = h(
        'select',
        {
          'aria-label': v.name,
          onchange: (e: Event) => {
            values[v.name] = (e.target as HTMLSelectElement).value;
            save();
            void render();
          },
        },
        choices.map((c) => h('option', { value: c, selected: c === values[v.name] }, c === ALL_VALUE ? 'All' : c)),
      );
      nodes.push(h('label.variable', v.label ?? v.name, sel));
    }
    mount(varBar, nodes);
  }

  async function render() {
    const my = ++seq;
    charts.splice(0).forEach((c) => c.destroy());
    const end = Date.now();
    const rows = dash!.rows.map((row) =>
      h(
        'div.dash-row',
        row.title ? h('h2', row.title) : null,
        h(
          'div.dash-grid',
          row.panels.map((p) => {
            const body = h('div.dash-body');
            const el = h(
              'section.panel.dash-panel',
              { style: { gridColumn: `span ${Math.max(1, Math.min(12, p.width ?? 6))}` }, 'data-state': 'loading', 'data-type': p.type },
              h('h3', { title: p.description ?? '' }, p.title),
              body,
            );
            void fillPanel(p, body, end).then(
              (state) => my === seq && el.setAttribute('data-state', state),
              (e: unknown) => {
                if (my !== seq) return;
                el.setAttribute('data-state', 'error');
                mount(body, h('div.error', e instanceof Error ? e.message : String(e)));
              },
            );
            return el;
          }),
        ),
      ),
    );
    mount(grid, rows);
  }

  async function fillPanel(p: DashboardPanel, body: HTMLElement, end: number): Promise<PanelState> {
    const exprs = p.queries.map((q) => substituteVariables(q.expr, values));
    if (p.type === 'timeseries') {
      const width = body.clientWidth || 600;
      const step = autoStep(range, width);
      const e = end;
      const s = end - range;
      const results = await Promise.all(exprs.map((x) => queryRange(x, s, e, step)));
      const series: { name: string; values: [number, string][]; metric: Labels }[] = [];
      results.forEach((r, qi) => {
        if (r.resultType !== 'matrix') return;
        for (const m of r.result) series.push({ name: formatLegend(p.queries[qi].legend ?? p.legend, m.metric), values: m.values, metric: m.metric });
      });
      if (series.length === 0) return mount(body, h('div.muted.empty', 'No data')), 'nodata';
      const chart = new Chart({
        names: series.map((x) => x.name),
        columns: alignMatrix(series, s, e, step),
        unit: p.unit,
        decimals: p.decimals,
        stacked: p.stacked,
        height: 220,
        thresholds: p.thresholds?.filter((t) => t.value !== undefined && t.value !== null && Number.isFinite(t.value)),
      });
      charts.push(chart);
      mount(body, chart.el);
      return 'ok';
    }
    const results = await Promise.all(exprs.map((x) => queryInstant(x, null)));
    const samples: { name: string; metric: Labels; value: number; query: number }[] = [];
    results.forEach((r, qi) => {
      if (r.resultType === 'vector') {
        for (const s of r.result)
          samples.push({ name: formatLegend(p.queries[qi].legend ?? p.legend, s.metric), metric: s.metric, value: sampleValue(s.value[1]), query: qi });
      } else if (r.resultType === 'scalar') {
        samples.push({ name: p.queries[qi].legend ?? '', metric: {}, value: sampleValue(r.result[1]), query: qi });
      }
    });
    if (samples.length === 0) return mount(body, h('div.muted.empty', 'No data')), 'nodata';
    if (p.type === 'stat') {
      mount(
        body,
        h(
          'div.stats',
          samples.map((s) =>
            h(
              'div.stat',
              { style: { color: thresholdColor(s.value, p.thresholds, 'inherit') } },
              h('div.stat-value', formatValue(s.value, p.unit, p.decimals)),
              samples.length > 1 || (p.queries[s.query].legend ?? p.legend) ? h('div.stat-name', s.name) : null,
            ),
          ),
        ),
      );
    } else if (p.type === 'gauge') {
      mount(body, h('div.stats', samples.map((s) => gauge(s.value, s.name, p, samples.length > 1))));
    } else {
      const labelNames = [...new Set(samples.flatMap((s) => Object.keys(s.metric)))].filter((k) => k !== '__name__').sort();
      const multi = p.queries.length > 1;
      mount(
        body,
        table(
          [...labelNames, ...(multi ? ['Query'] : []), 'Value'],
          samples.map((s) => [
            ...labelNames.map((n) => s.metric[n] ?? ''),
            ...(multi ? [p.queries[s.query].legend ? formatLegend(p.queries[s.query].legend, s.metric) : `#${s.query + 1}`] : []),
            h('span', { style: { color: thresholdColor(s.value, p.thresholds, 'inherit') } }, formatValue(s.value, p.unit, p.decimals)),
          ]),
        ),
      );
    }
    return 'ok';
  }

  mount(
    root,
    h('div.dash-head', h('h1', dash.title), varBar, h('div.spacer'), rangeSel, refreshSel, h('button', { onclick: () => void render() }, 'Refresh')),
    dash.description ? h('p.muted', dash.description) : null,
    grid,
  );
  await loadVariables();
  save();
  await render();
  schedule();
  return () => {
    clearInterval(timer);
    seq++;
    charts.forEach((c) => c.destroy());
  };
}

/** A semicircular gauge as SVG. */
function gauge(v: number, name: string, p: DashboardPanel, showName: boolean): HTMLElement {
  const min = p.min ?? 0;
  const max = p.max ?? (p.unit === 'percentunit' ? 1 : 100);
  const frac = Math.max(0, Math.min(1, (v - min) / (max - min || 1)));
  const color = thresholdColor(v, p.thresholds, '#2ca02c');
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 120 70');
  svg.setAttribute('class', 'gauge');
  const arc = (f: number) => {
    const a = Math.PI * (1 - f);
    return `${60 + 50 * Math.cos(a)} ${60 - 50 * Math.sin(a)}`;
  };
  const path = (f: number, stroke: string) => {
    const el = document.createElementNS(ns, 'path');
    el.setAttribute('d', `M ${arc(0)} A 50 50 0 0 1 ${arc(f)}`);
    el.setAttribute('fill', 'none');
    el.setAttribute('stroke', stroke);
    el.setAttribute('stroke-width', '10');
    return el;
  };
  svg.append(path(1, '#e5e5e5'));
  if (frac > 0) svg.append(path(frac, color));
  return h('div.stat', h('div.gauge-wrap', svg, h('div.gauge-value', { style: { color } }, formatValue(v, p.unit, p.decimals))), showName ? h('div.stat-name', name) : null);
}

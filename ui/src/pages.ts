// Targets, rules and status pages: read-only views of the API (the alerts
// page is in alerts.ts).

import { get, queryInstant, sampleValue, type Labels, type QueryResult } from './api';
import { h, mount, table } from './dom';
import { seriesName } from './legend';
import { formatAge, formatDuration } from './time';

export function labelChips(labels: Labels): HTMLElement {
  return h(
    'div.labels',
    Object.keys(labels)
      .sort()
      .map((k) => h('span.chip', `${k}="${labels[k]}"`)),
  );
}

function health(state: string): HTMLElement {
  const cls = state === 'up' || state === 'ok' ? 'ok' : state === 'unknown' || state === 'pending' ? 'warn' : 'bad';
  return h('span.badge.' + cls, state);
}

function secondsText(s: number | undefined): string {
  if (s === undefined || s === null) return '';
  return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(3)} s`;
}

export function age(iso: string | undefined, now: number): string {
  if (!iso || iso.startsWith('0001-')) return 'never';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : formatAge(t, now);
}

interface Target {
  labels: Labels;
  scrapePool: string;
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  scrapeInterval: string;
}

/** `/targets`: scrape targets by pool, then the HTTP probes. */
export async function targetsPage(root: HTMLElement) {
  const [targets, probes] = await Promise.all([
    get<{ activeTargets: Target[] }>('api/v1/targets', { state: 'active' }),
    probeRows(),
  ]);
  const now = Date.now();
  const pools = new Map<string, Target[]>();
  for (const t of targets.activeTargets) {
    const l = pools.get(t.scrapePool) ?? [];
    l.push(t);
    pools.set(t.scrapePool, l);
  }
  const sections = [...pools.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([pool, ts]) => {
      const up = ts.filter((t) => t.health === 'up').length;
      return h(
        'section.panel',
        h('h2', `${pool} `, h('span.muted', `(${up}/${ts.length} up)`)),
        table(
          ['Endpoint', 'State', 'Labels', 'Last scrape', 'Duration', 'Error'],
          ts.map((t) => [
            h('a', { href: t.scrapeUrl, target: '_blank', rel: 'noopener' }, t.scrapeUrl),
            health(t.health),
            labelChips(t.labels),
            h('span', { title: t.lastScrape }, age(t.lastScrape, now), ` (every ${t.scrapeInterval})`),
            secondsText(t.lastScrapeDuration),
            t.lastError ? h('span.error-text', t.lastError) : '',
          ]),
        ),
      );
    });
  mount(
    root,
    h('h1', 'Targets'),
    sections.length ? sections : h('p.muted', 'No scrape targets configured.'),
    h('h1', 'Probes'),
    probes,
  );
}

/** HTTP probes from vigil's own probe series (`probe_success` and friends). */
async function probeRows(): Promise<HTMLElement> {
  const [success, duration, code, last] = await Promise.all(
    ['probe_success', 'probe_duration_seconds', 'probe_http_status_code', 'timestamp(probe_success)'].map((q) =>
      queryInstant(q, null).catch(() => null),
    ),
  );
  if (!success || success.resultType !== 'vector' || success.result.length === 0) {
    return h('p.muted', 'No probes have run (the configuration has no probes section, or they have not run yet).');
  }
  const key = (l: Labels) => seriesName({ ...l, __name__: '' });
  const index = (r: QueryResult | null) => {
    const m = new Map<string, number>();
    if (r && r.resultType === 'vector') for (const s of r.result) m.set(key(s.metric), sampleValue(s.value[1]));
    return m;
  };
  const durations = index(duration);
  const codes = index(code);
  const lasts = index(last);
  const now = Date.now();
  return h(
    'section.panel',
    table(
      ['Probe', 'URL', 'State', 'Status code', 'Duration', 'Last probe', 'Labels'],
      success.result.map((s) => {
        const k = key(s.metric);
        const ok = sampleValue(s.value[1]) === 1;
        const t = lasts.get(k);
        return [
          s.metric.probe ?? '',
          s.metric.instance ?? '',
          health(ok ? 'up' : 'down'),
          codes.has(k) ? String(codes.get(k)) : '',
          secondsText(durations.get(k)),
          t !== undefined ? formatAge(t * 1000, now) : '',
          labelChips(Object.fromEntries(Object.entries(s.metric).filter(([n]) => n !== '__name__' && n !== 'probe' && n !== 'instance'))),
        ];
      }),
    ),
  );
}

interface Rule {
  name: string;
  query: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  lastEvaluation: string;
  evaluationTime: number;
  state?: string;
  duration?: number;
  labels?: Labels;
  alerts?: unknown[];
}
interface RuleGroup {
  name: string;
  file: string;
  interval: number;
  rules: Rule[];
  lastEvaluation: string;
  evaluationTime: number;
}

/** `/rules`: rule groups with health, last evaluation and duration. */
export async function rulesPage(root: HTMLElement) {
  const data = await get<{ groups: RuleGroup[] }>('api/v1/rules');
  const now = Date.now();
  mount(
    root,
    h('h1', 'Rules'),
    data.groups.length === 0
      ? h('p.muted', 'No rule groups (the configuration has no rule_files).')
      : data.groups.map((g) =>
          h(
            'section.panel',
            h(
              'h2',
              g.name,
              ' ',
              h('span.muted', `${g.file} · every ${formatDuration(g.interval * 1000)} · last ${age(g.lastEvaluation, now)} · took ${secondsText(g.evaluationTime)}`),
            ),
            table(
              ['Rule', 'State', 'Health', 'Last evaluation', 'Duration', 'Error'],
              g.rules.map((r) => [
                h(
                  'div',
                  h('div', h('strong', r.type === 'alerting' ? 'alert: ' : 'record: '), r.name),
                  h('code.expr', r.query),
                  r.labels && Object.keys(r.labels).length ? labelChips(r.labels) : null,
                ),
                r.type === 'alerting' ? h('span.badge.' + (r.state === 'firing' ? 'bad' : r.state === 'pending' ? 'warn' : 'ok'), `${r.state} (${r.alerts?.length ?? 0})`) : '',
                health(r.health),
                age(r.lastEvaluation, now),
                secondsText(r.evaluationTime),
                r.lastError ? h('span.error-text', r.lastError) : '',
              ]),
            ),
          ),
        ),
  );
}

function kv(obj: Record<string, unknown>): HTMLElement {
  return table(
    ['Name', 'Value'],
    Object.keys(obj).map((k) => [k, typeof obj[k] === 'object' ? JSON.stringify(obj[k]) : String(obj[k])]),
    'grid.kv',
  );
}

interface TsdbStats {
  headStats: Record<string, number>;
  seriesCountByMetricName: { name: string; value: number }[];
  labelValueCountByLabelName: { name: string; value: number }[];
  memoryInBytesByLabelName: { name: string; value: number }[];
  seriesCountByLabelValuePair: { name: string; value: number }[];
}

/** `/status`: build, runtime, flags, configuration, TSDB statistics. */
export async function statusPage(root: HTMLElement) {
  const [build, runtime, flags, config, tsdb] = await Promise.all([
    get<Record<string, unknown>>('api/v1/status/buildinfo'),
    get<Record<string, unknown>>('api/v1/status/runtimeinfo'),
    get<Record<string, string>>('api/v1/status/flags'),
    get<{ yaml: string }>('api/v1/status/config'),
    get<TsdbStats>('api/v1/status/tsdb'),
  ]);
  const top = (title: string, rows: { name: string; value: number }[]) =>
    h('div', h('h3', title), table(['Name', 'Count'], rows.map((r) => [h('code', r.name), String(r.value)])));
  const head = { ...tsdb.headStats } as Record<string, unknown>;
  for (const k of ['minTime', 'maxTime']) {
    const v = head[k];
    if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 1e15) head[k] = `${new Date(v).toISOString()} (${v})`;
  }
  mount(
    root,
    h('h1', 'Status'),
    h('div.columns', h('section.panel', h('h2', 'Build'), kv(build)), h('section.panel', h('h2', 'Runtime'), kv(runtime))),
    h(
      'section.panel',
      h('h2', 'TSDB'),
      kv(head),
      h(
        'div.columns',
        top('Top series by metric name', tsdb.seriesCountByMetricName),
        top('Top label names by value count', tsdb.labelValueCountByLabelName),
        top('Top label names by memory (bytes)', tsdb.memoryInBytesByLabelName),
        top('Top series by label pair', tsdb.seriesCountByLabelValuePair),
      ),
    ),
    h('section.panel', h('h2', 'Flags'), kv(flags)),
    h('section.panel', h('h2', 'Configuration'), h('pre.config', config.yaml)),
  );
}

// The query explorer: several query panels, each with a PromQL input
// (autocomplete, syntax errors where they are), Graph and Table tabs, a
// range picker with drag zoom, automatic step, stacked display. The URL
// holds the state of every panel.

import { ApiError, get, post, queryInstant, queryRange, sampleValue, type QueryResult } from './api';
import { Chart } from './chart';
import { h, mount, table } from './dom';
import { seriesName } from './legend';
import { completionContext, errorOffset, FUNCTIONS, rankCandidates, type Completion } from './promql';
import { checkSyntax } from './syntax';
import { alignMatrix } from './series';
import { decodePanels, defaultPanel, encodePanels, panelWindow, zoomed, type QueryPanel } from './state';
import { autoStep, formatDuration, formatTime, parseDuration, RANGES } from './time';

/** Names fetched from the API for autocomplete, cached per page load. */
class Names {
  private metrics: Promise<string[]> | null = null;
  private labels = new Map<string, Promise<string[]>>();
  private values = new Map<string, Promise<string[]>>();

  metricNames(): Promise<string[]> {
    this.metrics ??= get<string[]>('api/v1/label/__name__/values').catch(() => []);
    return this.metrics;
  }

  labelNames(metric: string | null): Promise<string[]> {
    const key = metric ?? '';
    let p = this.labels.get(key);
    if (!p) {
      p = get<string[]>('api/v1/labels', metric ? { 'match[]': metric } : undefined)
        .then((l) => l.filter((n) => n !== '__name__'))
        .catch(() => []);
      this.labels.set(key, p);
    }
    return p;
  }

  labelValues(label: string, metric: string | null): Promise<string[]> {
    const key = `${metric ?? ''}\u0000${label}`;
    let p = this.values.get(key);
    if (!p) {
      p = get<string[]>(`api/v1/label/${encodeURIComponent(label)}/values`, metric ? { 'match[]': metric } : undefined).catch(
        () => [],
      );
      this.values.set(key, p);
    }
    return p;
  }
}

const names = new Names();

/** The PromQL input: a textarea with a completion list and an error line. */
class QueryInput {
  readonly el: HTMLElement;
  readonly textarea: HTMLTextAreaElement;
  private list: HTMLElement;
  private error: HTMLElement;
  private items: string[] = [];
  private selected = 0;
  private ctx: Completion = { kind: 'none' };
  private checkTimer = 0;
  private checkSeq = 0;

  constructor(
    value: string,
    private onSubmit: () => void,
  ) {
    this.textarea = h('textarea.expr', {
      rows: 1,
      spellcheck: false,
      placeholder: 'Expression (press Enter to run, Shift+Enter for a new line)',
      'aria-label': 'PromQL expression',
      autocomplete: 'off',
    }) as HTMLTextAreaElement;
    this.textarea.value = value;
    this.list = h('ul.completions', { hidden: true, role: 'listbox' });
    this.error = h('div.syntax-error', { hidden: true });
    this.el = h('div.query-input', this.textarea, this.list, this.error);
    this.textarea.addEventListener('input', () => {
      this.autosize();
      void this.complete();
      this.scheduleCheck();
    });
    this.textarea.addEventListener('keydown', (e) => this.keydown(e));
    this.textarea.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    requestAnimationFrame(() => this.autosize());
    if (value) this.scheduleCheck();
  }

  get value(): string {
    return this.textarea.value;
  }

  private autosize() {
    this.textarea.style.height = 'auto';
    this.textarea.style.height = `${this.textarea.scrollHeight + 2}px`;
  }

  private keydown(e: KeyboardEvent) {
    const open = !this.list.hidden && this.items.length > 0;
    if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      this.selected = (this.selected + (e.key === 'ArrowDown' ? 1 : this.items.length - 1)) % this.items.length;
      this.renderList();
    } else if (open && (e.key === 'Tab' || e.key === 'Enter')) {
      e.preventDefault();
      this.accept(this.items[this.selected]);
    } else if (open && e.key === 'Escape') {
      this.close();
    } else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      this.close();
      this.onSubmit();
    }
  }

  private async complete() {
    const text = this.textarea.value;
    const cursor = this.textarea.selectionStart ?? text.length;
    const ctx = completionContext(text, cursor);
    this.ctx = ctx;
    let candidates: string[] = [];
    if (ctx.kind === 'metric') {
      if (ctx.prefix === '') return this.close();
      candidates = [...(await names.metricNames()), ...FUNCTIONS];
    } else if (ctx.kind === 'label') {
      candidates = await names.labelNames(ctx.metric);
    } else if (ctx.kind === 'value') {
      candidates = await names.labelValues(ctx.label, ctx.metric);
    } else {
      return this.close();
    }
    if (this.ctx !== ctx) return; // typed on meanwhile
    this.items = rankCandidates(new Set(candidates), ctx.prefix);
    this.selected = 0;
    this.renderList();
  }

  private renderList() {
    if (this.items.length === 0) return this.close();
    mount(
      this.list,
      this.items.map((item, i) =>
        h(
          'li' + (i === this.selected ? '.selected' : ''),
          { role: 'option', onmousedown: (e: MouseEvent) => (e.preventDefault(), this.accept(item)) },
          item,
        ),
      ),
    );
    this.list.hidden = false;
    (this.list.children[this.selected] as HTMLElement | undefined)?.scrollIntoView({ block: 'nearest' });
  }

  private accept(item: string) {
    const ctx = this.ctx;
    if (ctx.kind === 'none') return;
    const text = this.textarea.value;
    const cursor = this.textarea.selectionStart ?? text.length;
    let insert = item;
    if (ctx.kind === 'value') {
      const escaped = item.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      insert = ctx.quote ? `"${escaped}"` : escaped;
    }
    this.textarea.value = text.slice(0, ctx.from) + insert + text.slice(cursor);
    const pos = ctx.from + insert.length;
    this.textarea.setSelectionRange(pos, pos);
    this.close();
    this.textarea.focus();
    this.scheduleCheck();
  }

  close() {
    this.list.hidden = true;
    this.items = [];
  }

  private scheduleCheck() {
    clearTimeout(this.checkTimer);
    this.checkTimer = window.setTimeout(() => void this.check(), 250);
  }

  /** Checks the syntax locally (for the position) and with the server (the authority). */
  async check(): Promise<boolean> {
    const expr = this.textarea.value;
    const seq = ++this.checkSeq;
    if (expr.trim() === '') {
      this.showError(null, expr);
      return true;
    }
    const local = checkSyntax(expr);
    let message: string | null = null;
    try {
      await post('api/v1/parse_query', { query: expr });
    } catch (e) {
      message = e instanceof ApiError ? e.message.replace(/^invalid parameter "query": /, '') : String(e);
    }
    if (seq !== this.checkSeq) return message === null;
    if (message === null) this.showError(null, expr);
    else this.showError({ message, offset: errorOffset(message, expr) ?? local?.offset ?? null, hint: local?.message }, expr);
    return message === null;
  }

  showError(err: { message: string; offset: number | null; hint?: string } | null, expr: string) {
    if (!err) {
      this.error.hidden = true;
      this.textarea.classList.remove('invalid');
      return;
    }
    this.textarea.classList.add('invalid');
    const parts: (HTMLElement | string)[] = [];
    if (err.offset !== null) {
      const lineStart = expr.lastIndexOf('\n', err.offset - 1) + 1;
      const lineEnd = expr.indexOf('\n', err.offset);
      const line = expr.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
      const col = err.offset - lineStart;
      parts.push(
        h(
          'pre.error-line',
          line.slice(0, col),
          h('mark', line.slice(col, col + 1) || ' '),
          line.slice(col + 1),
          '\n' + ' '.repeat(col) + '^',
        ),
      );
    }
    const detail = err.hint && err.hint !== err.message ? ` (${err.hint})` : '';
    parts.push(h('div', err.offset !== null ? `column ${err.offset + 1}: ` : '', err.message, detail));
    mount(this.error, parts);
    this.error.hidden = false;
  }
}

/** One query panel. */
class PanelView {
  readonly el: HTMLElement;
  private input: QueryInput;
  private body = h('div.panel-body');
  private status = h('div.panel-status');
  private chart: Chart | null = null;
  private abort: AbortController | null = null;
  private tabs: HTMLElement;
  private controls: HTMLElement;

  constructor(
    public state: QueryPanel,
    private changed: () => void,
    remove: () => void,
  ) {
    this.input = new QueryInput(state.expr, () => this.run());
    this.tabs = h('div.tabs');
    this.controls = h('div.controls');
    this.el = h(
      'section.panel.query-panel',
      h('div.query-row', this.input.el, h('button.primary', { onclick: () => this.run() }, 'Execute'), h('button', { title: 'Remove this query', onclick: remove }, '×')),
      h('div.panel-head', this.tabs, this.controls),
      this.body,
      this.status,
    );
    this.renderHead();
  }

  private set(patch: Partial<QueryPanel>) {
    this.state = { ...this.state, ...patch };
    this.changed();
    this.renderHead();
    void this.execute();
  }

  private renderHead() {
    const s = this.state;
    const tab = (name: 'graph' | 'table', label: string) =>
      h('button.tab' + (s.tab === name ? '.active' : ''), { onclick: () => this.set({ tab: name }) }, label);
    mount(this.tabs, tab('table', 'Table'), tab('graph', 'Graph'));
    const rangeInput = h('input.range', { value: formatDuration(s.range), list: 'vigil-ranges', size: 5, 'aria-label': 'range' }) as HTMLInputElement;
    rangeInput.addEventListener('change', () => {
      const r = parseDuration(rangeInput.value);
      if (r && r > 0) this.set({ range: r, step: null });
      else rangeInput.value = formatDuration(s.range);
    });
    const shiftRange = (factor: number) => {
      const idx = RANGES.map((r) => parseDuration(r) as number).findIndex((r) => r >= s.range);
      const next = RANGES[Math.max(0, Math.min(RANGES.length - 1, (idx < 0 ? RANGES.length : idx) + factor))];
      this.set({ range: parseDuration(next) as number, step: null });
    };
    const endInput = h('input.end', {
      value: s.end === null ? '' : formatTime(s.end),
      placeholder: 'now',
      size: 17,
      'aria-label': 'end time',
    }) as HTMLInputElement;
    endInput.addEventListener('change', () => {
      const v = endInput.value.trim();
      if (v === '' || v === 'now') return this.set({ end: null });
      const t = Date.parse(v.replace(' ', 'T'));
      if (!Number.isNaN(t)) this.set({ end: t });
    });
    const moveEnd = (dir: number) => {
      const end = (s.end ?? Date.now()) + (dir * s.range) / 2;
      this.set({ end: dir > 0 && end >= Date.now() ? null : end });
    };
    const width = this.body.clientWidth || 1000;
    const stepInput = h('input.step', {
      value: s.step === null ? '' : formatDuration(s.step),
      placeholder: `auto (${formatDuration(autoStep(s.range, width))})`,
      size: 9,
      'aria-label': 'resolution',
    }) as HTMLInputElement;
    stepInput.addEventListener('change', () => {
      const v = parseDuration(stepInput.value);
      this.set({ step: v && v > 0 ? v : null });
    });
    const stacked = h('input', { type: 'checkbox', checked: s.stacked, onchange: () => this.set({ stacked: !s.stacked }) });
    if (s.tab === 'graph') {
      mount(
        this.controls,
        h('button', { title: 'shorter range', onclick: () => shiftRange(-1) }, '−'),
        rangeInput,
        h('button', { title: 'longer range', onclick: () => shiftRange(1) }, '+'),
        h('button', { title: 'earlier', onclick: () => moveEnd(-1) }, '‹'),
        endInput,
        h('button', { title: 'later', onclick: () => moveEnd(1) }, '›'),
        s.end !== null ? h('button', { title: 'back to now', onclick: () => this.set({ end: null }) }, 'now') : null,
        stepInput,
        h('label.check', stacked, 'stacked'),
      );
    } else {
      mount(this.controls, h('span.muted', 'at'), endInput, s.end !== null ? h('button', { onclick: () => this.set({ end: null }) }, 'now') : null);
    }
  }

  run() {
    this.set({ expr: this.input.value });
  }

  async execute() {
    this.abort?.abort();
    this.chart?.destroy();
    this.chart = null;
    const expr = this.state.expr.trim();
    if (expr === '') {
      mount(this.body, h('div.muted.empty', 'Enter an expression and press Enter.'));
      mount(this.status);
      return;
    }
    const abort = new AbortController();
    this.abort = abort;
    this.body.classList.add('loading');
    const started = performance.now();
    try {
      if (this.state.tab === 'graph') await this.graph(expr, abort.signal, started);
      else await this.table(expr, abort.signal, started);
      this.input.showError(null, expr);
    } catch (e) {
      if (abort.signal.aborted) return;
      const msg = e instanceof Error ? e.message : String(e);
      mount(this.body, h('div.error', msg));
      mount(this.status);
      if (e instanceof ApiError && e.errorType === 'bad_data') void this.input.check();
    } finally {
      this.body.classList.remove('loading');
    }
  }

  private async graph(expr: string, signal: AbortSignal, started: number) {
    const width = this.body.clientWidth || 1000;
    const now = Date.now();
    const [start, end] = panelWindow(this.state, now);
    const step = this.state.step ?? autoStep(this.state.range, width);
    const res = await queryRange(expr, start, end, step, signal);
    if (res.resultType !== 'matrix') throw new Error(`expected a range vector, got ${res.resultType}`);
    const took = performance.now() - started;
    const names = res.result.map((s) => seriesName(s.metric));
    const columns = alignMatrix(res.result, start, end, step);
    this.chart = new Chart({
      names,
      columns,
      stacked: this.state.stacked,
      onZoom: (from, to) => this.set(zoomed(this.state, from, to)),
    });
    mount(this.body, res.result.length === 0 ? h('div.muted.empty', 'No data in this range.') : this.chart.el);
    this.body.dataset.series = String(res.result.length);
    mount(
      this.status,
      `${res.result.length} series · ${formatTime(start)} to ${formatTime(end)} · step ${formatDuration(step)} · ${took.toFixed(0)} ms · drag to zoom`,
    );
  }

  private async table(expr: string, signal: AbortSignal, started: number) {
    const res: QueryResult = await queryInstant(expr, this.state.end, signal);
    const took = performance.now() - started;
    let content: HTMLElement;
    let count = 0;
    if (res.resultType === 'vector') {
      count = res.result.length;
      content = table(
        ['Series', 'Value'],
        res.result.map((s) => [h('code', seriesName(s.metric)), s.value[1]]),
      );
    } else if (res.resultType === 'matrix') {
      count = res.result.length;
      content = table(
        ['Series', 'Values'],
        res.result.map((s) => [h('code', seriesName(s.metric)), h('div.values', s.values.map(([t, v]) => h('div', `${v} @${t}`)))]),
      );
    } else {
      count = 1;
      content = table(['Type', 'Value'], [[res.resultType, res.resultType === 'scalar' ? String(sampleValue(res.result[1])) : res.result[1]]]);
    }
    mount(this.body, count === 0 ? h('div.muted.empty', 'Empty result.') : content);
    this.body.dataset.series = String(count);
    mount(this.status, `${count} result${count === 1 ? '' : 's'} · ${took.toFixed(0)} ms`);
  }

  destroy() {
    this.abort?.abort();
    this.chart?.destroy();
  }
}

/** Renders the explorer into `root`, from and to the URL's query string. */
export function explorer(root: HTMLElement): () => void {
  const panels: PanelView[] = [];
  const list = h('div.panels');
  const save = () => {
    const search = encodePanels(panels.map((p) => p.state));
    history.replaceState(history.state, '', `${location.pathname}?${search}`);
  };
  const add = (state: QueryPanel) => {
    const view: PanelView = new PanelView(state, save, () => {
      const i = panels.indexOf(view);
      if (i < 0) return;
      panels.splice(i, 1);
      view.destroy();
      view.el.remove();
      if (panels.length === 0) add(defaultPanel());
      save();
    });
    panels.push(view);
    list.append(view.el);
    return view;
  };
  const datalist = h('datalist', { id: 'vigil-ranges' }, RANGES.map((r) => h('option', { value: r })));
  mount(
    root,
    h('h1', 'Query'),
    datalist,
    list,
    h('button.add', { onclick: () => (add(defaultPanel()), save()) }, 'Add query'),
  );
  for (const state of decodePanels(location.search)) {
    const v = add(state);
    requestAnimationFrame(() => void v.execute());
  }
  return () => panels.forEach((p) => p.destroy());
}

// Time-series charts with uPlot: our own legend (click toggles a series,
// shift-click shows it alone), a tooltip with every series at the cursor,
// and drag to zoom.

import uPlot from 'uplot';
import { h, mount } from './dom';
import { formatValue } from './units';
import { formatTime } from './time';
import { stackColumns, seriesColor, type Columns } from './series';

export interface ChartOptions {
  names: string[];
  columns: Columns;
  unit?: string;
  decimals?: number;
  stacked?: boolean;
  height?: number;
  /** Called with the selected [from, to] in ms after a drag. */
  onZoom?: (from: number, to: number) => void;
  /** Threshold lines drawn across the chart. */
  thresholds?: { value: number; color: string }[];
}

/** Most rows the tooltip lists; the rest are counted. */
const TOOLTIP_ROWS = 40;

export class Chart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private visible: boolean[];
  private legendItems: HTMLElement[] = [];
  private tooltip: HTMLElement;
  private resize: ResizeObserver;

  constructor(private opts: ChartOptions) {
    this.visible = opts.names.map(() => true);
    this.tooltip = h('div.tooltip', { hidden: true });
    const plotEl = h('div.plot');
    const legend = h('div.legend');
    this.el = h('div.chart', plotEl, this.tooltip, legend);
    this.legendItems = opts.names.map((name, i) =>
      h(
        'div.legend-item',
        {
          title: 'click: toggle, shift-click: show only this series',
          onclick: (e: MouseEvent) => this.toggle(i, e.shiftKey),
        },
        h('span.swatch', { style: { background: seriesColor(i) } }),
        name,
      ),
    );
    legend.append(...this.legendItems);
    this.resize = new ResizeObserver(() => {
      const w = plotEl.clientWidth;
      if (!this.plot && w > 0) this.build(plotEl, w);
      else if (this.plot && w > 0 && w !== this.plot.width) this.plot.setSize({ width: w, height: this.plot.height });
    });
    this.resize.observe(plotEl);
  }

  /** Series currently shown. */
  get visibleSeries(): boolean[] {
    return [...this.visible];
  }

  destroy() {
    this.resize.disconnect();
    this.plot?.destroy();
  }

  private data(): uPlot.AlignedData {
    const ys = this.opts.stacked ? stackColumns(this.opts.columns.ys, this.visible) : this.opts.columns.ys;
    return [this.opts.columns.xs, ...ys] as uPlot.AlignedData;
  }

  private toggle(i: number, only: boolean) {
    if (only) {
      const alone = this.visible.every((v, j) => v === (j === i));
      this.visible = this.visible.map((_, j) => alone || j === i);
    } else {
      this.visible[i] = !this.visible[i];
    }
    this.legendItems.forEach((el, j) => el.classList.toggle('off', !this.visible[j]));
    if (!this.plot) return;
    this.plot.batch(() => {
      this.visible.forEach((v, j) => this.plot!.setSeries(j + 1, { show: v }));
      if (this.opts.stacked) this.plot!.setData(this.data());
    });
  }

  private build(el: HTMLElement, width: number) {
    const { unit, decimals, stacked } = this.opts;
    const many = this.opts.names.length > 50;
    const series: uPlot.Series[] = [
      {},
      ...this.opts.names.map((label, i) => ({
        label,
        stroke: seriesColor(i),
        width: 1.25,
        fill: stacked ? seriesColor(i) + (seriesColor(i).startsWith('#') ? '55' : '') : undefined,
        spanGaps: false,
      })),
    ];
    const bands: uPlot.Band[] = [];
    if (stacked) for (let i = this.opts.names.length; i > 1; i--) bands.push({ series: [i, i - 1] });
    const thresholds = this.opts.thresholds ?? [];
    const opts: uPlot.Options = {
      width,
      height: this.opts.height ?? 300,
      series,
      bands,
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: !many },
        focus: { prox: 16 },
      },
      focus: { alpha: many ? 1 : 0.4 },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#666', grid: { stroke: '#eee' } },
        {
          stroke: '#666',
          grid: { stroke: '#eee' },
          size: 70,
          values: (_u, vals) => vals.map((v) => formatValue(v, unit, decimals)),
        },
      ],
      hooks: {
        setCursor: [(u) => this.showTooltip(u)],
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const from = u.posToVal(u.select.left, 'x') * 1000;
            const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.opts.onZoom?.(from, to);
          },
        ],
        draw: [
          (u) => {
            if (thresholds.length === 0) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.setLineDash([6, 4]);
            ctx.lineWidth = 1;
            for (const t of thresholds) {
              const y = u.valToPos(t.value, 'y', true);
              if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
              ctx.strokeStyle = t.color;
              ctx.beginPath();
              ctx.moveTo(u.bbox.left, y);
              ctx.lineTo(u.bbox.left + u.bbox.width, y);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
    this.plot = new uPlot(opts, this.data(), el);
  }

  private showTooltip(u: uPlot) {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
      this.tooltip.hidden = true;
      return;
    }
    const { unit, decimals } = this.opts;
    const rows: [number, number][] = [];
    this.opts.columns.ys.forEach((col, i) => {
      const v = col[idx];
      if (this.visible[i] && v !== null && v !== undefined) rows.push([i, v]);
    });
    rows.sort((a, b) => b[1] - a[1]);
    const shown = rows.slice(0, TOOLTIP_ROWS);
    mount(
      this.tooltip,
      h('div.tooltip-time', formatTime(this.opts.columns.xs[idx] * 1000)),
      ...shown.map(([i, v]) =>
        h(
          'div.tooltip-row',
          h('span.swatch', { style: { background: seriesColor(i) } }),
          h('span.tooltip-name', this.opts.names[i]),
          h('span.tooltip-value', formatValue(v, unit, decimals)),
        ),
      ),
      rows.length > shown.length ? h('div.tooltip-more', `and ${rows.length - shown.length} more`) : null,
      rows.length === 0 ? h('div.tooltip-more', 'no values') : null,
    );
    this.tooltip.hidden = false;
    const left = u.cursor.left + u.bbox.left / devicePixelRatio;
    const flip = left > u.width / 2;
    this.tooltip.style.left = flip ? '' : `${left + 16}px`;
    this.tooltip.style.right = flip ? `${u.width - left + 16}px` : '';
    this.tooltip.style.top = `${(u.cursor.top ?? 0) + 8}px`;
  }
}

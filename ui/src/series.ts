// Turning API results into chart columns. Pure functions.

import { sampleValue, type MatrixSeries } from './api';

/** Columns for uPlot: shared x (Unix seconds) and one y array per series. */
export interface Columns {
  xs: number[];
  ys: (number | null)[][];
}

/**
 * Aligns range-query series on the steps start, start+step, ..., end (all
 * in ms). A step without a sample is null, so the line breaks there.
 */
export function alignMatrix(series: MatrixSeries[], start: number, end: number, step: number): Columns {
  const n = Math.floor((end - start) / step) + 1;
  const xs = new Array<number>(n);
  for (let i = 0; i < n; i++) xs[i] = (start + i * step) / 1000;
  const ys = series.map((s) => {
    const col = new Array<number | null>(n).fill(null);
    for (const [t, v] of s.values) {
      const i = Math.round((t * 1000 - start) / step);
      if (i >= 0 && i < n) {
        const x = sampleValue(v);
        col[i] = Number.isFinite(x) ? x : null;
      }
    }
    return col;
  });
  return { xs, ys };
}

/**
 * Stacks visible series bottom-up: each visible series becomes the running
 * sum of itself and the visible series before it. Hidden series are left
 * as they are (not drawn). A missing value adds nothing but stays missing.
 */
export function stackColumns(ys: (number | null)[][], visible: boolean[]): (number | null)[][] {
  if (ys.length === 0) return [];
  const n = ys[0].length;
  const acc = new Array<number>(n).fill(0);
  return ys.map((col, i) => {
    if (!visible[i]) return col;
    return col.map((v, j) => {
      if (v === null) return null;
      acc[j] += v;
      return acc[j];
    });
  });
}

/** A stable, distinct colour per series index. */
export function seriesColor(i: number): string {
  const palette = ['#1f77b4', '#e8590c', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
  if (i < palette.length) return palette[i];
  const hue = (i * 137.508) % 360;
  return `hsl(${hue.toFixed(0)}, 60%, 45%)`;
}

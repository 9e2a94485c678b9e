import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePanels, defaultPanel, encodePanels, panelWindow, zoomed, type QueryPanel } from '../src/state';

test('panels round-trip through the URL', () => {
  const panels: QueryPanel[] = [
    { expr: 'sum by (job) (rate(x{a="1 2"}[5m]))', tab: 'graph', range: 6 * 3600_000, end: Date.UTC(2025, 0, 2, 3, 4, 5), step: 30_000, stacked: true },
    { expr: 'up', tab: 'table', range: 3600_000, end: null, step: null, stacked: false },
  ];
  const search = encodePanels(panels);
  assert.match(search, /g0\.expr=sum\+by/);
  assert.match(search, /g0\.range=6h/);
  assert.match(search, /g0\.step=30s/);
  assert.match(search, /g0\.end=2025-01-02T03%3A04%3A05\.000Z/);
  assert.doesNotMatch(search, /g1\.(end|step|stacked)/);
  assert.deepEqual(decodePanels('?' + search), panels);
});

test('decoding tolerates Prometheus links and bad values', () => {
  const [p] = decodePanels('g0.expr=up&g0.tab=1&g0.range=bogus&g0.step=15&g0.end=1700000000');
  assert.equal(p.tab, 'table');
  assert.equal(p.range, defaultPanel().range);
  assert.equal(p.step, 15_000);
  assert.equal(p.end, 1_700_000_000_000);
  assert.deepEqual(decodePanels(''), [defaultPanel()]);
  // Panels stop at the first gap.
  assert.equal(decodePanels('g0.expr=a&g2.expr=c').length, 1);
});

test('window and zoom', () => {
  const q = { ...defaultPanel(), range: 600_000 };
  assert.deepEqual(panelWindow(q, 1_000_000), [400_000, 1_000_000]);
  const z = zoomed(q, 500_000.4, 700_000.6);
  assert.equal(z.end, 700_001);
  assert.equal(z.range, 200_000);
  assert.equal(z.step, null);
  assert.deepEqual(panelWindow(z, 9e12), [500_001, 700_001]);
});

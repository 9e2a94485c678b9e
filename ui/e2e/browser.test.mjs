// Browser tests of the web UI in real headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core), against a vigil this test
// starts with data remote-written into it. Screenshots and timings go to
// $VIGIL_UI_TEST_OUT (default ui/test-output).
//
// VIGIL_BIN: the binary (default $CARGO_TARGET_DIR/debug/vigil, then
// /var/tmp/vigil-target/debug/vigil). CHROMIUM: the browser (/usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { remoteWrite } from './remote_write.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const OUT = resolve(process.env.VIGIL_UI_TEST_OUT ?? join(ROOT, 'ui/test-output'));
const BIN = process.env.VIGIL_BIN ?? join(process.env.CARGO_TARGET_DIR ?? '/var/tmp/vigil-target', 'debug/vigil');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PREFIX = '/vigil';

let vigil;
let work;
let browser;
let base; // http://127.0.0.1:port/vigil/
const timings = {};

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

async function waitFor(fn, what, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}

async function api(path) {
  const res = await fetch(new URL(path, base), { signal: AbortSignal.timeout(15_000) });
  const body = await res.json();
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data;
}

/** Starts vigil and waits until it is ready. */
async function startVigil(config, data, port, prefix) {
  const child = spawn(
    BIN,
    [`--config.file=${config}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${port}`, `--web.route-prefix=${prefix || '/'}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  child.on('exit', (code) => code !== null && code !== 0 && console.error(`vigil exited ${code}\n${log}`));
  try {
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${port}${prefix}/-/ready`, { signal: AbortSignal.timeout(5_000) })).ok,
      'vigil ready',
    );
  } catch (e) {
    await stopVigil(child);
    throw e;
  }
  return child;
}

async function stopVigil(child) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

const STEP = 15_000;

before(async () => {
  assert.ok(existsSync(BIN), `vigil binary not found at ${BIN} (build it with cargo build -p vigil)`);
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}`);
  mkdirSync(OUT, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'vigil-ui-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}${PREFIX}/`;
  const dashboards = ['examples/dashboards/*.yml', 'examples/ev-bunker/dashboards/*.yml']
    .filter((g) => existsSync(join(ROOT, g.replace('/*.yml', ''))))
    .map((g) => `  - ${join(ROOT, g)}`)
    .join('\n');
  writeFileSync(
    join(work, 'vigil.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: vigil\n    metrics_path: ${PREFIX}/metrics\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\nstorage:\n  tsdb:\n    out_of_order_time_window: 2d\ndashboards:\n${dashboards}\n`,
  );
  vigil = await startVigil(join(work, 'vigil.yml'), join(work, 'data'), port, PREFIX);

  // Three counters over the last 50 minutes, one sample every 15 s.
  const now = Date.now();
  const start = Math.floor((now - 50 * 60_000) / STEP) * STEP;
  const series = ['a', 'b', 'c'].map((inst, k) => {
    const samples = [];
    for (let t = start, v = 0; t <= now; t += STEP, v += (k + 1) * 15) samples.push([t, v]);
    return { labels: { __name__: 'ui_test_requests_total', job: 'ui-test', instance: inst }, samples };
  });
  await remoteWrite(new URL('api/v1/write', base), series);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  // Let vigil scrape itself a few times, for the dashboards' rates.
  await waitFor(async () => (await api('api/v1/query?query=count_over_time(up[1m])'))?.result?.[0]?.value?.[1] >= 5, 'self scrapes');
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await stopVigil(vigil);
  writeFileSync(join(OUT, 'timings.json'), JSON.stringify(timings, null, 2) + '\n');
  if (work) rmSync(work, { recursive: true, force: true });
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  return { page, errors };
}

test('the UI loads fast, under the route prefix, with small assets', async () => {
  const { page, errors } = await newPage();
  const t0 = Date.now();
  await page.goto(base, { waitUntil: 'load' });
  await page.waitForSelector('textarea.expr');
  timings.loadMs = Date.now() - t0;
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource').filter((r) => r.name.includes('/assets/'));
    return {
      domContentLoadedMs: n.domContentLoadedEventEnd,
      loadEventMs: n.loadEventEnd,
      transferBytes: n.transferSize + res.reduce((a, r) => a + r.transferSize, 0),
      decodedBytes: n.decodedBodySize + res.reduce((a, r) => a + r.decodedBodySize, 0),
    };
  });
  Object.assign(timings, nav);
  assert.ok(page.url().endsWith(`${PREFIX}/graph`), page.url());
  assert.ok(nav.loadEventMs < 1000, `load took ${nav.loadEventMs} ms`);
  assert.ok(nav.transferBytes < 300 * 1024, `page weight ${nav.transferBytes} bytes`);
  await page.screenshot({ path: join(OUT, 'load.png') });
  assert.deepEqual(errors, []);
});

test('type a query with autocomplete, see the graph, hover a point, zoom', async () => {
  const { page, errors } = await newPage();
  await page.goto(base + 'graph');
  const input = page.locator('textarea.expr').first();
  await input.click();
  await input.pressSequentially('ui_test_req');
  await page.waitForSelector('.completions li:has-text("ui_test_requests_total")');
  await page.screenshot({ path: join(OUT, 'autocomplete-metric.png') });
  await input.press('Tab');
  assert.equal(await input.inputValue(), 'ui_test_requests_total');
  await input.pressSequentially('{ins');
  await page.waitForSelector('.completions li:has-text("instance")');
  await input.press('Tab');
  await input.pressSequentially('=');
  await page.waitForSelector('.completions li:has-text("a")');
  await page.screenshot({ path: join(OUT, 'autocomplete-value.png') });
  await input.press('Escape');
  // A syntax error is shown where it is.
  await input.pressSequentially('}[');
  await page.waitForSelector('.syntax-error:not([hidden]) mark');
  await page.screenshot({ path: join(OUT, 'syntax-error.png') });
  await input.fill('rate(ui_test_requests_total[1m])');
  await input.press('Enter');
  await page.waitForSelector('.panel-body[data-series="3"] .u-over');
  assert.equal(await page.locator('.legend-item').count(), 3);
  assert.equal(await page.locator('.syntax-error:not([hidden])').count(), 0);
  // Hover the middle of the plot: the tooltip lists all three series.
  const over = page.locator('.u-over').first();
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
  await page.waitForSelector('.tooltip:not([hidden])');
  assert.equal(await page.locator('.tooltip-row').count(), 3);
  await page.screenshot({ path: join(OUT, 'graph-hover.png') });
  // The legend toggles a series.
  await page.locator('.legend-item').nth(1).click();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await waitFor(async () => (await page.locator('.tooltip-row').count()) === 2, 'tooltip without the hidden series');
  // The URL holds the query.
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('g0.expr'), 'rate(ui_test_requests_total[1m])');
  assert.equal(url.searchParams.get('g0.range'), '1h');
  // Drag to zoom: the range becomes absolute and shorter.
  await page.mouse.move(box.x + box.width * 0.3, box.y + 20);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + 40, { steps: 5 });
  await page.mouse.up();
  await waitFor(() => new URL(page.url()).searchParams.get('g0.end'), 'zoomed URL');
  const zoomed = new URL(page.url());
  assert.notEqual(zoomed.searchParams.get('g0.range'), '1h');
  await page.waitForSelector('.panel-body[data-series="3"] .u-over');
  await page.screenshot({ path: join(OUT, 'graph-zoomed.png') });
  // The syntax check's 400 from /api/v1/parse_query is expected.
  assert.deepEqual(errors.filter((e) => !e.includes('status of 400')), []);
});

test('a shared URL reproduces the view: several queries, stacked, table tab', async () => {
  const p = new URLSearchParams({
    'g0.expr': 'ui_test_requests_total',
    'g0.tab': 'graph',
    'g0.range': '30m',
    'g0.stacked': '1',
    'g1.expr': 'sum by (instance) (ui_test_requests_total)',
    'g1.tab': 'table',
    'g1.range': '1h',
  });
  const shared = `${base}graph?${p}`;
  const { page, errors } = await newPage();
  await page.goto(shared);
  await page.waitForSelector('.query-panel:nth-child(1) .panel-body[data-series="3"] .u-over');
  await page.waitForSelector('.query-panel:nth-child(2) .panel-body[data-series="3"] table');
  const panels = page.locator('.query-panel');
  assert.equal(await panels.count(), 2);
  assert.equal(await panels.nth(0).locator('textarea').inputValue(), 'ui_test_requests_total');
  assert.equal(await panels.nth(0).locator('input.range').inputValue(), '30m');
  assert.ok(await panels.nth(0).locator('label.check input').isChecked());
  assert.equal(await panels.nth(1).locator('.tab.active').innerText(), 'Table');
  assert.equal(await panels.nth(1).locator('tbody tr').count(), 3);
  await page.screenshot({ path: join(OUT, 'shared-url.png'), fullPage: true });
  // The page's own URL is the same view (defaults are written out).
  const again = new URL(page.url()).searchParams;
  for (const [k, v] of p) assert.equal(again.get(k), v, k);
  assert.deepEqual(errors, []);
});

test('every dashboard: every panel has data and no errors', async () => {
  const { dashboards, errors: loadErrors } = await api('api/v1/dashboards');
  assert.deepEqual(loadErrors, []);
  assert.ok(dashboards.some((d) => d.id === 'vigil'));
  for (const d of dashboards) {
    if (d.file.includes('ev-bunker') && !process.env.VIGIL_UI_EV_BUNKER) continue; // needs the EV Bunker app's data (issue #9)
    const { page, errors } = await newPage();
    await page.goto(`${base}dashboards/${d.id}?range=5m`);
    await page.waitForSelector('.dash-panel');
    await waitFor(async () => (await page.locator('.dash-panel[data-state="loading"]').count()) === 0, `panels of ${d.id}`);
    const states = await page.locator('.dash-panel').evaluateAll((els) =>
      els.map((e) => [e.querySelector('h3')?.textContent, e.getAttribute('data-state'), e.querySelector('.error')?.textContent ?? '']),
    );
    await page.screenshot({ path: join(OUT, `dashboard-${d.id}.png`), fullPage: true });
    const bad = states.filter(([, s]) => s !== 'ok');
    assert.deepEqual(bad, [], `${d.id}: panels without data`);
    assert.deepEqual(errors, []);
  }
});

test('targets, rules, alerts and status pages render from the API', async () => {
  const { page, errors } = await newPage();
  for (const [path, text] of [
    ['targets', 'vigil'],
    ['rules', 'Rules'],
    ['alerts', 'Alerts'],
    ['status', 'seriesCount'.length ? 'TSDB' : ''],
  ]) {
    await page.goto(base + path);
    await page.waitForSelector(`main h1`);
    await page.waitForFunction((t) => document.querySelector('main').innerText.includes(t), text);
    assert.equal(await page.locator('main .error').count(), 0, `${path} shows an error`);
    await page.screenshot({ path: join(OUT, `${path}.png`), fullPage: true });
  }
  await page.goto(base + 'targets');
  await page.waitForSelector('.badge.ok');
  assert.deepEqual(errors, []);
});

test('a 1-day, 1,000-series graph renders without jank', async () => {
  // A vigil of its own, so that the day is written in order (out-of-order
  // appends are much slower): 1,000 series, one sample every 5 minutes.
  const port = await freePort();
  const own = await startVigil('/dev/null', join(work, 'load-data'), port, '');
  try {
    const root = `http://127.0.0.1:${port}/`;
    const now = Date.now();
    const start = Math.floor((now - 24 * 3600_000) / 300_000) * 300_000;
    for (let h0 = start; h0 <= now; h0 += 3600_000) {
      const series = [];
      for (let i = 0; i < 1000; i++) {
        const samples = [];
        for (let t = h0; t < Math.min(h0 + 3600_000, now); t += 300_000) samples.push([t, Math.sin(t / 3.6e6 + i) * 100 + i]);
        series.push({ labels: { __name__: 'ui_test_load', series: String(i) }, samples });
      }
      await remoteWrite(`${root}api/v1/write`, series);
    }
    const { page, errors } = await newPage();
    const p = new URLSearchParams({ 'g0.expr': 'ui_test_load', 'g0.tab': 'graph', 'g0.range': '1d' });
    const t0 = Date.now();
    await page.goto(`${root}graph?${p}`);
    await page.waitForSelector('.panel-body[data-series="1000"] .u-over', { timeout: 30000 });
    timings.graph1000x1dMs = Date.now() - t0;
    // Hovering across the plot: frames stay short.
    const box = await page.locator('.u-over').boundingBox();
    const frames = await page.evaluate(
      async ({ x, y, w }) => {
        const over = document.querySelector('.u-over');
        const times = [];
        let last = performance.now();
        for (let i = 0; i < 30; i++) {
          over.dispatchEvent(new MouseEvent('mousemove', { clientX: x + (w * i) / 30, clientY: y, bubbles: true }));
          await new Promise((r) => requestAnimationFrame(r));
          const t = performance.now();
          times.push(t - last);
          last = t;
        }
        times.sort((a, b) => a - b);
        return { medianMs: times[15], maxMs: times[29] };
      },
      { x: box.x + 5, y: box.y + box.height / 2, w: box.width - 10 },
    );
    timings.hover1000Frames = frames;
    await page.screenshot({ path: join(OUT, 'graph-1000-series.png') });
    assert.ok(timings.graph1000x1dMs < 10000, `1000 series took ${timings.graph1000x1dMs} ms`);
    assert.ok(frames.medianMs < 50, `median hover frame ${frames.medianMs} ms`);
    assert.deepEqual(errors, []);
  } finally {
    await stopVigil(own);
  }
});

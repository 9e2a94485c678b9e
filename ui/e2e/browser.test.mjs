// Browser tests of the web UI in real headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core), against a vigil this test
// starts with data remote-written into it, rules that fire and vigil's
// notifier sending to a local webhook sink. Screenshots and timings go to
// $VIGIL_UI_TEST_OUT (default ui/test-output). The EV Bunker dashboards need
// the EV Bunker application's data: ev_bunker_dashboards.test.mjs checks
// them against a running stack.
//
// VIGIL_BIN: the binary (default $CARGO_TARGET_DIR/debug/vigil, then
// /var/tmp/vigil-target/debug/vigil). CHROMIUM: the browser (/usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { remoteWrite } from './remote_write.mjs';
import { BIN, CHROMIUM, ROOT, apiData, apiJson, freePort, launchBrowser, newPage as openPage, outDir, startVigil, stopVigil, waitFor, dashboardPanels } from './lib.mjs';

const PREFIX = '/vigil';
const OUT = outDir();

let vigil;
let work;
let browser;
let base; // http://127.0.0.1:port/vigil/
let sink; // the webhook sink: what the notifier sent, by path
const received = [];
const timings = {};

const api = (path) => apiData(base, path);
const newPage = () => openPage(browser);

const STEP = 15_000;

// Three alerts: a critical one escalated until acknowledged, a warning, and
// one that stays pending. The notifier groups by alert name.
const RULES = `groups:
- name: ui-test
  interval: 1s
  rules:
  - alert: UiTestDown
    expr: vector(1)
    labels: {severity: critical, service: checkout}
    annotations: {summary: Checkout is down}
  - alert: UiTestDiskLow
    expr: vector(1)
    labels: {severity: warning, service: storage}
    annotations: {summary: Disk almost full}
  - alert: UiTestSoon
    expr: vector(1)
    for: 1h
    labels: {severity: warning, service: search}
`;

function notifyConfig(sinkPort) {
  const hook = (p) => `    webhook_configs:\n      - url: http://127.0.0.1:${sinkPort}/${p}\n`;
  return (
    `notify:\n  route:\n    receiver: team\n    group_by: [alertname]\n    group_wait: 1s\n    group_interval: 1s\n    repeat_interval: 1h\n` +
    `    routes:\n      - matchers: ['severity="critical"']\n        escalation: oncall\n` +
    `  receivers:\n  - name: team\n${hook('team')}  - name: l1\n${hook('l1')}  - name: l2\n${hook('l2')}` +
    `  escalations:\n  - name: oncall\n    levels:\n    - receivers: [l1]\n      timeout: 2s\n    - receivers: [l2]\n      timeout: 1h\n`
  );
}

before(async () => {
  assert.ok(existsSync(BIN), `vigil binary not found at ${BIN} (build it with cargo build -p vigil)`);
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}`);
  work = mkdtempSync(join(tmpdir(), 'vigil-ui-'));
  sink = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ path: req.url, body });
      res.end();
    });
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  const port = await freePort();
  base = `http://127.0.0.1:${port}${PREFIX}/`;
  writeFileSync(join(work, 'rules.yml'), RULES);
  writeFileSync(
    join(work, 'vigil.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: vigil\n    metrics_path: ${PREFIX}/metrics\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\nstorage:\n  tsdb:\n    out_of_order_time_window: 2d\n` +
      `rule_files: [rules.yml]\ndashboards:\n  - ${join(ROOT, 'examples/dashboards/*.yml')}\n${notifyConfig(sink.address().port)}`,
  );
  vigil = await startVigil({ config: join(work, 'vigil.yml'), data: join(work, 'data'), port, prefix: PREFIX });

  // Three counters over the last 50 minutes, one sample every 15 s.
  const now = Date.now();
  const start = Math.floor((now - 50 * 60_000) / STEP) * STEP;
  const series = ['a', 'b', 'c'].map((inst, k) => {
    const samples = [];
    for (let t = start, v = 0; t <= now; t += STEP, v += (k + 1) * 15) samples.push([t, v]);
    return { labels: { __name__: 'ui_test_requests_total', job: 'ui-test', instance: inst }, samples };
  });
  await remoteWrite(new URL('api/v1/write', base), series);
  browser = await launchBrowser();
  // Let vigil scrape itself a few times, for the dashboards' rates.
  await waitFor(async () => (await api('api/v1/query?query=count_over_time(up[1m])'))?.result?.[0]?.value?.[1] >= 5, 'self scrapes');
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await stopVigil(vigil);
  sink?.close();
  writeFileSync(join(OUT, 'timings.json'), JSON.stringify(timings, null, 2) + '\n');
  if (work) rmSync(work, { recursive: true, force: true });
});

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
    const { page, errors } = await newPage();
    const states = await dashboardPanels(page, `${base}dashboards/${d.id}?range=5m`, join(OUT, `dashboard-${d.id}.png`));
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

/** The notifier's group of an alert name, from the API. */
async function groupOf(alertname) {
  const [status, groups] = await apiJson(base, 'api/v2/alerts/groups');
  assert.equal(status, 200, JSON.stringify(groups));
  return groups.find((g) => g.labels.alertname === alertname);
}

const rowOf = (page, alertname) => page.locator(`section.alert-group tr.alert-row:has(td:first-child strong:text-is("${alertname}"))`);

test('alerts: grouped as the notifier groups them, with severity, escalation and history; acknowledge with a comment', async () => {
  // The critical group escalates: level 1 at its first notification, level 2
  // after level 1's 2 s timeout without an ack.
  const down = await waitFor(async () => {
    const g = await groupOf('UiTestDown');
    return g?.escalation?.level >= 2 && g;
  }, 'the critical group escalated to level 2', 30_000);
  assert.equal(down.acked, false);
  const { page, errors } = await newPage();
  await page.goto(base + 'alerts');
  const group = page.locator(`section.alert-group[data-id="${down.id}"]`);
  await group.waitFor();
  // Groups as the notifier makes them (one per alert name), pending ones too.
  await page.locator('section.alert-group tr.alert-row[data-state="pending"]').waitFor();
  const groups = await page.locator('section.alert-group').evaluateAll((els) =>
    els.map((e) => [[...e.querySelectorAll('.group-head .chip')].map((c) => c.textContent).join(' '), e.dataset.severity]),
  );
  assert.deepEqual(groups, [
    ['alertname="UiTestDown"', 'critical'],
    ['alertname="UiTestDiskLow"', 'warning'],
    ['alertname="UiTestSoon"', 'warning'],
  ]);
  assert.equal(await rowOf(page, 'UiTestSoon').getAttribute('data-state'), 'pending');
  assert.equal(await rowOf(page, 'UiTestDown').getAttribute('data-state'), 'firing');
  // Severity colours: the critical group's stripe is red, the warning's orange.
  const stripe = (sev) => page.locator(`section.alert-group[data-severity="${sev}"]`).first().evaluate((e) => getComputedStyle(e).borderLeftColor);
  assert.equal(await stripe('critical'), 'rgb(224, 49, 49)');
  assert.equal(await stripe('warning'), 'rgb(240, 140, 0)');
  assert.match(await group.locator('.escalation-level').innerText(), /escalation level 2/);
  assert.match(await group.locator('.escalation').innerText(), /Escalation oncall: level 2/);
  await page.screenshot({ path: join(OUT, 'alerts-groups.png'), fullPage: true });

  // Acknowledge the group with a comment, in the name given on the page.
  await page.fill('input.user', 'ui-tester');
  await group.locator('button.ack-group').click();
  const form = group.locator('form.ack-form');
  assert.equal(await form.locator('input[name="by"]').inputValue(), 'ui-tester');
  await form.locator('textarea[name="comment"]').fill('investigating from the UI');
  await page.screenshot({ path: join(OUT, 'alerts-ack-form.png'), fullPage: true });
  await form.locator('button[type="submit"]').click();
  await page.waitForSelector('.action-status .notice:has-text("Acknowledged")');
  const info = page.locator(`section.alert-group[data-id="${down.id}"] .ack-info`);
  await info.waitFor();
  assert.match(await info.innerText(), /Acknowledged by ui-tester .*: investigating from the UI/);
  assert.equal(await page.locator(`section.alert-group[data-id="${down.id}"] button.ack-group`).count(), 0);
  assert.equal(await rowOf(page, 'UiTestDown').locator('button.ack-alert').count(), 0);
  // The escalation stops where it stood.
  assert.match(await page.locator(`section.alert-group[data-id="${down.id}"] .escalation`).innerText(), /level 2, .*held by the acknowledgement/);

  // The API shows the ack: in the acks, on the group, on the rule's alert.
  const [, acks] = await apiJson(base, 'api/v1/notify/acks');
  const ack = acks.find((a) => a.kind === 'group' && a.target === down.key);
  assert.ok(ack, JSON.stringify(acks));
  assert.equal(ack.by, 'ui-tester');
  assert.equal(ack.comment, 'investigating from the UI');
  assert.equal((await groupOf('UiTestDown')).acked, true);
  const { alerts } = await api('api/v1/alerts');
  const ruleAlert = alerts.find((a) => a.labels.alertname === 'UiTestDown');
  assert.equal(ruleAlert?.ack?.by, 'ui-tester', JSON.stringify(ruleAlert));

  // One alert acknowledged on its own, by its fingerprint.
  const disk = rowOf(page, 'UiTestDiskLow');
  const fingerprint = await disk.getAttribute('data-fingerprint');
  await disk.locator('button.ack-alert').click();
  const alertForm = page.locator('form.ack-form');
  await alertForm.locator('textarea[name="comment"]').fill('cleaning up');
  await alertForm.locator('input[name="expires"]').fill('2h');
  await alertForm.locator('button[type="submit"]').click();
  await page.waitForSelector('.action-status .notice:has-text("Acknowledged this UiTestDiskLow alert")');
  assert.match(await rowOf(page, 'UiTestDiskLow').locator('.ack-info').innerText(), /Acknowledged by ui-tester: cleaning up/);
  const [, acks2] = await apiJson(base, 'api/v1/notify/acks');
  const alertAck = acks2.find((a) => a.kind === 'alert' && a.target === fingerprint);
  assert.ok(alertAck, JSON.stringify(acks2));
  assert.equal(alertAck.comment, 'cleaning up');
  const lapse = Date.parse(alertAck.expiresAt) - Date.parse(alertAck.at);
  assert.ok(Math.abs(lapse - 2 * 3600_000) < 60_000, `ack lapses after ${lapse} ms`);
  // And removed again.
  await rowOf(page, 'UiTestDiskLow').locator('button.unack').click();
  await page.waitForSelector(`.action-status .notice:has-text("Acknowledgement ${alertAck.id} removed")`);
  const [, acks3] = await apiJson(base, 'api/v1/notify/acks');
  assert.equal(acks3.filter((a) => a.kind === 'alert').length, 0, JSON.stringify(acks3));
  assert.equal(await rowOf(page, 'UiTestDiskLow').locator('.ack-info').count(), 0);

  // The group's notification history: sent, escalated, acknowledged.
  await page.locator(`section.alert-group[data-id="${down.id}"] button.history-toggle`).click();
  const hist = page.locator(`section.alert-group[data-id="${down.id}"] .history-list`);
  await hist.locator('li[data-type="acked"]').waitFor();
  assert.match(await hist.locator('li[data-type="acked"]').first().innerText(), /ui-tester acknowledged the group: investigating from the UI/);
  assert.match(await hist.locator('li[data-type="escalated"]').first().innerText(), /Escalated to level 2 \(policy oncall\)/);
  assert.ok((await hist.locator('li[data-type="notified"]').allInnerTexts()).some((t) => /Notified l2 by webhook: 1 firing \(escalation level 2\)/.test(t)));
  // The sink really got them: the route's receiver and both levels.
  for (const p of ['/team', '/l1', '/l2']) assert.ok(received.some((r) => r.path === p && r.body.includes('UiTestDown')), `nothing sent to ${p}`);
  await page.screenshot({ path: join(OUT, 'alerts-acked.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('alerts: create a silence from an alert with its matchers, then expire it', async () => {
  const { page, errors } = await newPage();
  await page.goto(base + 'alerts');
  const row = rowOf(page, 'UiTestDiskLow');
  await row.waitFor();
  assert.equal(await row.getAttribute('data-state'), 'firing');
  await row.locator('button.silence-alert').click();
  const form = page.locator('form.silence-form');
  const matchers = () =>
    form.locator('.matcher-row').evaluateAll((rows) => rows.map((r) => [r.querySelector('.m-name').value, r.querySelector('.m-op').value, r.querySelector('.m-value').value]));
  // Pre-filled with the alert's labels.
  assert.deepEqual(await matchers(), [
    ['alertname', '=', 'UiTestDiskLow'],
    ['service', '=', 'storage'],
    ['severity', '=', 'warning'],
  ]);
  assert.match(await form.locator('.silence-preview').innerText(), /^Matches 1 of the 3 alerts/);
  // Edited: severity by a regex, service dropped; the preview follows.
  const sev = form.locator('.matcher-row').nth(2);
  await sev.locator('.m-op').selectOption('=~');
  await sev.locator('.m-value').fill('warn.*');
  await form.locator('.matcher-row').nth(1).locator('.m-remove').click();
  await form.locator('.matcher-row').first().locator('.m-value').fill('UiTest.*');
  await form.locator('.matcher-row').first().locator('.m-op').selectOption('=~');
  await waitFor(async () => /^Matches 2 of the 3 alerts/.test(await form.locator('.silence-preview').innerText()), 'the preview to count 2');
  await form.locator('.matcher-row').first().locator('.m-op').selectOption('=');
  await form.locator('.matcher-row').first().locator('.m-value').fill('UiTestDiskLow');
  assert.match(await form.locator('.silence-preview').innerText(), /^Matches 1 of/);
  assert.deepEqual(await matchers(), [
    ['alertname', '=', 'UiTestDiskLow'],
    ['severity', '=~', 'warn.*'],
  ]);
  await form.locator('input[name="duration"]').fill('90m');
  await form.locator('input[name="createdBy"]').fill('ui-tester');
  // Without a comment the form says so and stays open.
  await form.locator('button[type="submit"]').click();
  await form.locator('.form-error .error:has-text("comment")').waitFor();
  await form.locator('textarea[name="comment"]').fill('disk replaced tomorrow');
  await page.screenshot({ path: join(OUT, 'silence-form.png'), fullPage: true });
  await form.locator('button[type="submit"]').click();
  const created = await page.locator('.action-status .notice:has-text("created")').innerText();
  const id = /Silence (\S+) created/.exec(created)?.[1];
  assert.ok(id, created);

  // The API has it as edited, and the notifier silences the alert.
  const [st, s] = await apiJson(base, `api/v2/silence/${id}`);
  assert.equal(st, 200, JSON.stringify(s));
  assert.equal(s.status.state, 'active');
  assert.deepEqual(
    s.matchers.map((m) => [m.name, m.value, m.isRegex, m.isEqual]),
    [
      ['alertname', 'UiTestDiskLow', false, true],
      ['severity', 'warn.*', true, true],
    ],
  );
  assert.equal(s.createdBy, 'ui-tester');
  assert.equal(s.comment, 'disk replaced tomorrow');
  const length = Date.parse(s.endsAt) - Date.parse(s.startsAt);
  assert.ok(Math.abs(length - 90 * 60_000) < 60_000, `silence lasts ${length} ms`);
  const [, silenced] = await apiJson(base, `api/v2/alerts?filter=${encodeURIComponent('alertname="UiTestDiskLow"')}`);
  assert.deepEqual(silenced[0].status.silencedBy, [id]);
  const silenceRow = page.locator(`tr.silence-row[data-id="${id}"]`);
  await silenceRow.waitFor();
  assert.equal(await silenceRow.getAttribute('data-state'), 'active');
  assert.match(await silenceRow.innerText(), /1 alert\b/);
  await waitFor(async () => (await rowOf(page, 'UiTestDiskLow').getAttribute('data-state')) === 'silenced', 'the alert shown silenced');
  await page.screenshot({ path: join(OUT, 'silence-created.png'), fullPage: true });

  // Expire it: the API says expired, the page hides it unless asked.
  await silenceRow.locator('button.expire').click();
  await page.locator(`.action-status .notice:has-text("Silence ${id} expired")`).waitFor();
  const [, after] = await apiJson(base, `api/v2/silence/${id}`);
  assert.equal(after.status.state, 'expired');
  const [, again] = await apiJson(base, `api/v2/alerts?filter=${encodeURIComponent('alertname="UiTestDiskLow"')}`);
  assert.deepEqual(again[0].status.silencedBy, []);
  await waitFor(async () => (await page.locator(`tr.silence-row[data-id="${id}"]`).count()) === 0, 'the expired silence hidden');
  assert.equal(await rowOf(page, 'UiTestDiskLow').getAttribute('data-state'), 'firing');
  await page.locator('section.silences label.check input').check();
  assert.equal(await page.locator(`tr.silence-row[data-id="${id}"]`).getAttribute('data-state'), 'expired');
  await page.screenshot({ path: join(OUT, 'silence-expired.png'), fullPage: true });

  // An API error shows on the page: a silence someone else expired first.
  const [code, made] = await apiJson(base, 'api/v2/silences', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      matchers: [{ name: 'alertname', value: 'UiTestSoon', isRegex: false, isEqual: true }],
      startsAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + 3600_000).toISOString(),
      createdBy: 'someone',
      comment: 'other tab',
    }),
  });
  assert.equal(code, 200, JSON.stringify(made));
  await page.locator('button.refresh').click();
  const other = page.locator(`tr.silence-row[data-id="${made.silenceID}"][data-state="active"]`);
  await other.waitFor();
  const [del] = await apiJson(base, `api/v2/silence/${made.silenceID}`, { method: 'DELETE' });
  assert.equal(del, 200);
  await other.locator('button.expire').click();
  const err = page.locator('.action-status .error');
  await err.waitFor();
  assert.match(await err.innerText(), /404/);
  await page.screenshot({ path: join(OUT, 'silence-error.png'), fullPage: true });
  // The console reports the failed request; nothing else went wrong.
  assert.deepEqual(errors.filter((e) => !e.includes('status of 404')), []);
});

test('a 1-day, 1,000-series graph renders without jank', async () => {
  // A vigil of its own, so that the day is written in order (out-of-order
  // appends are much slower): 1,000 series, one sample every 5 minutes.
  const port = await freePort();
  const own = await startVigil({ config: '/dev/null', data: join(work, 'load-data'), port });
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

// The EV Bunker dashboards (examples/ev-bunker/dashboards/: Overview,
// Performance, Business) in real headless Chromium against an EV Bunker
// stack that is already running: every panel must show data and no error.
// They need the EV Bunker application's metrics, so this test does not
// start a vigil of its own.
//
//   VIGIL_UI_EV_BUNKER=http://127.0.0.1:9090/ node --test ui/e2e/ev_bunker_dashboards.test.mjs
//
// VIGIL_UI_EV_BUNKER: the base URL of the running vigil (with its route
// prefix, if any); unset, the test is skipped. VIGIL_UI_EV_BUNKER_WAIT:
// seconds to wait for every panel to have data (default 90; a stack that
// just started may lack the samples a rate needs). Screenshots go to
// $VIGIL_UI_TEST_OUT/ev-bunker/ (default ui/test-output/ev-bunker/).
// CHROMIUM: the browser (/usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM, ROOT, apiData, dashboardPanels, launchBrowser, newPage, outDir } from './lib.mjs';

const TARGET = process.env.VIGIL_UI_EV_BUNKER?.trim();
const WAIT_MS = Number(process.env.VIGIL_UI_EV_BUNKER_WAIT ?? 90) * 1000;
const SKIP = TARGET ? false : 'VIGIL_UI_EV_BUNKER is not set: give the base URL of a vigil running the EV Bunker stack (examples/ev-bunker) to check its dashboards';
const base = TARGET ? (TARGET.endsWith('/') ? TARGET : TARGET + '/') : '';

// The dashboards the example ships; ids are the file stems.
const DIR = join(ROOT, 'examples/ev-bunker/dashboards');
const IDS = existsSync(DIR)
  ? readdirSync(DIR)
      .filter((f) => f.endsWith('.yml'))
      .map((f) => f.slice(0, -4))
      .sort()
  : [];

let browser;

before(async () => {
  if (SKIP) return;
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}`);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test('the running vigil serves the EV Bunker dashboards without load errors', { skip: SKIP }, async () => {
  assert.deepEqual(IDS, ['business', 'overview', 'performance']);
  const { dashboards, errors } = await apiData(base, 'api/v1/dashboards');
  assert.deepEqual(errors, [], 'dashboard files that did not load');
  const served = new Set(dashboards.map((d) => d.id));
  for (const id of IDS) assert.ok(served.has(id), `${base} does not serve the dashboard ${id} (has ${[...served].join(', ')})`);
});

for (const id of IDS) {
  test(`EV Bunker dashboard ${id}: every panel has data and no errors`, { skip: SKIP, timeout: WAIT_MS + 120_000 }, async () => {
    const { page, errors } = await newPage(browser);
    const shot = join(outDir('ev-bunker'), `dashboard-${id}.png`);
    const deadline = Date.now() + WAIT_MS;
    let states;
    let bad;
    // The dashboard's own time range and variables, as a person opens it;
    // reopened until every panel has data or the wait is over.
    for (;;) {
      states = await dashboardPanels(page, `${base}dashboards/${id}`, shot);
      bad = states.filter(([, s]) => s !== 'ok');
      if (bad.length === 0 || bad.some(([, s]) => s === 'error') || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 5000));
    }
    assert.ok(states.length > 0, `${id}: no panels`);
    assert.deepEqual(bad, [], `${id}: panels without data or with errors ([title, state, error]); screenshot ${shot}`);
    assert.equal(await page.locator('main .error').count(), 0, `${id} shows an error`);
    assert.deepEqual(errors, [], `${id}: browser errors`);
  });
}

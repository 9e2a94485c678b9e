// The UI behind authentication (issue #11), in real headless Chromium: a
// vigil started with a web config file (basic-auth users with bcrypt
// hashes made by `vigil web hash-password`, roles). Without credentials the
// browser is asked to log in (401 + WWW-Authenticate); logged in, the UI
// loads and its API calls carry the login; a read-only user sees data but
// cannot acknowledge or silence. Screenshots go to <test output>/login/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, freePort, launchBrowser, outDir, startVigil, stopVigil } from './lib.mjs';

const OUT = outDir('login');
const PW = { ana: 'ana-password-1', viewer: 'viewer-password-1' };

let vigil;
let work;
let browser;
let base;

function hash(pw) {
  const r = spawnSync(BIN, ['web', 'hash-password', '--cost', '4'], { input: pw + '\n', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'vigil-ui-login-'));
  const port = await freePort();
  writeFileSync(
    join(work, 'web.yml'),
    [
      'basic_auth_users:',
      `  ana: ${hash(PW.ana)}`,
      `  viewer: ${hash(PW.viewer)}`,
      'user_roles:',
      '  viewer: read',
      'open_health_endpoints: true',
      '',
    ].join('\n'),
  );
  // No scrape jobs (a self-scrape would need credentials too); the queries
  // below need no stored data.
  writeFileSync(join(work, 'vigil.yml'), 'global:\n  scrape_interval: 15s\n');
  vigil = await startVigil({
    config: join(work, 'vigil.yml'),
    data: join(work, 'data'),
    port,
    args: [`--web.config.file=${join(work, 'web.yml')}`],
  });
  base = `http://127.0.0.1:${port}/`;
  browser = await launchBrowser();
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await stopVigil(vigil);
  if (work) rmSync(work, { recursive: true, force: true });
});

async function pageAs(user) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    ...(user ? { httpCredentials: { username: user, password: PW[user] } } : {}),
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, errors, context };
}

test('without credentials the browser is asked to log in', async () => {
  const { page, context } = await pageAs(null);
  // The server's answer: 401 with the Basic challenge that makes a
  // browser show its login dialog.
  const res = await page.request.get(base + 'graph');
  assert.equal(res.status(), 401);
  assert.match(res.headers()['www-authenticate'] ?? '', /^Basic realm="vigil"/);
  // A wrong password is refused the same way.
  const wrong = await page.request.get(base + 'graph', {
    headers: { authorization: 'Basic ' + Buffer.from('ana:nope').toString('base64') },
  });
  assert.equal(wrong.status(), 401);
  await context.close();
});

test('logged in, the UI loads and its API calls carry the login', async () => {
  const { page, errors, context } = await pageAs('ana');
  const res = await page.goto(base + 'graph');
  assert.equal(res.status(), 200);
  const input = page.locator('textarea.expr').first();
  await input.fill('vector(1) or vector(2)');
  await input.press('Enter');
  await page.waitForSelector('.panel-body[data-series="1"] .u-over');
  await page.screenshot({ path: join(OUT, 'graph.png') });
  // Other pages too: the status page's API calls are read calls.
  await page.goto(base + 'status');
  await page.waitForSelector('text=TSDB');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a read-only user sees data but may not change anything', async () => {
  const { page, errors, context } = await pageAs('viewer');
  assert.equal((await page.goto(base + 'graph')).status(), 200);
  const calls = await page.evaluate(async () => {
    const q = await fetch('api/v1/query?query=1');
    const silence = await fetch('api/v2/silences', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ matchers: [{ name: 'a', value: 'b', isRegex: false }], startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3600e3).toISOString(), createdBy: 'x', comment: 'x' }),
    });
    const reload = await fetch('-/reload', { method: 'POST' });
    return [q.status, silence.status, reload.status];
  });
  assert.deepEqual(calls, [200, 403, 403]);
  assert.deepEqual(errors, []);
  await context.close();
  // The refusals are counted for the security alerts.
  const { page: admin, context: c2 } = await pageAs('ana');
  await admin.goto(base + 'graph');
  const metrics = await admin.evaluate(async () => (await fetch('metrics')).text());
  const forbidden = Number(/vigil_http_auth_failures_total\{reason="forbidden"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(forbidden >= 2, metrics);
  const missing = Number(/vigil_http_auth_failures_total\{reason="missing_credentials"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(missing >= 1, 'the first test asked without credentials');
  await c2.close();
});

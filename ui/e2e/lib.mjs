// Helpers shared by the browser tests: paths and binaries, starting and
// stopping a vigil, polling, the APIs, Chromium pages that collect their
// errors, and checking a dashboard's panels.
//
// VIGIL_BIN: the binary (default $CARGO_TARGET_DIR/debug/vigil, then
// /var/tmp/vigil-target/debug/vigil). CHROMIUM: the browser
// (/usr/bin/chromium). VIGIL_UI_TEST_OUT: where screenshots and timings go
// (default ui/test-output).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const OUT = resolve(process.env.VIGIL_UI_TEST_OUT ?? join(ROOT, 'ui/test-output'));
export const BIN = process.env.VIGIL_BIN ?? join(process.env.CARGO_TARGET_DIR ?? '/var/tmp/vigil-target', 'debug/vigil');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** The screenshot directory (a subdirectory of OUT when named), created. */
export function outDir(sub) {
  const d = sub ? join(OUT, sub) : OUT;
  mkdirSync(d, { recursive: true });
  return d;
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

/** Polls `fn` until it returns something truthy; throws after `ms`. */
export async function waitFor(fn, what, ms = 20000) {
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

/** GETs a Prometheus-style API path below `base` and returns its `data`. */
export async function apiData(base, path) {
  const res = await fetch(new URL(path, base), { signal: AbortSignal.timeout(15_000) });
  const body = await res.json();
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data;
}

/** Calls a plain-JSON API (the notifier's, `api/v2/…`, `api/v1/notify/…`); answers [status, body]. */
export async function apiJson(base, path, init = {}) {
  const res = await fetch(new URL(path, base), { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: the text.
  }
  return [res.status, body];
}

/** Starts vigil and waits until it is ready. `args` are extra flags. */
export async function startVigil({ config, data, port, prefix = '', args = [] }) {
  assert.ok(prefix === '' || prefix.startsWith('/'), prefix);
  const child = spawn(
    BIN,
    [`--config.file=${config}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${port}`, `--web.route-prefix=${prefix || '/'}`, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  child.on('exit', (code) => code !== null && code !== 0 && console.error(`vigil exited ${code}\n${log}`));
  child.log = () => log;
  try {
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${port}${prefix}/-/ready`, { signal: AbortSignal.timeout(5_000) })).ok,
      'vigil ready',
    );
  } catch (e) {
    await stopVigil(child);
    throw new Error(`${e.message}\n${log}`);
  }
  return child;
}

export async function stopVigil(child) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

export function launchBrowser() {
  assert.ok(CHROMIUM && CHROMIUM.length > 0);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}

/** A page in a fresh context; `errors` collects page errors and console errors. */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  return { page, errors };
}

/**
 * Opens a dashboard (`url`), waits until no panel is loading, and answers
 * each panel as [title, state, error text]; state is `ok`, `nodata` or
 * `error`. Screenshots the page to `shot`.
 */
export async function dashboardPanels(page, url, shot) {
  await page.goto(url);
  await page.waitForSelector('.dash-panel');
  await waitFor(async () => (await page.locator('.dash-panel[data-state="loading"]').count()) === 0, `panels of ${url}`, 60_000);
  const states = await page.locator('.dash-panel').evaluateAll((els) =>
    els.map((e) => [e.querySelector('h3')?.textContent, e.getAttribute('data-state'), e.querySelector('.error')?.textContent ?? '']),
  );
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  return states;
}

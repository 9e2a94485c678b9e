// Builds the UI into dist/: one minified, content-hashed JS bundle and CSS
// file, and index.html naming them (the server gzips them once, at first use). The output depends only
// on the sources and the locked packages, so CI rebuilds it and compares it
// byte for byte with the committed dist/ (see .ci/run and docs/ARCHITECTURE.md).
// `--tests` bundles test/*.test.ts into build/test/ for `node --test` instead.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;

if (process.argv.includes('--tests')) {
  const tests = readdirSync(join(here, 'test')).filter((f) => f.endsWith('.test.ts'));
  rmSync(join(here, 'build/test'), { recursive: true, force: true });
  await esbuild.build({
    entryPoints: tests.map((t) => join(here, 'test', t)),
    bundle: true,
    platform: 'node',
    format: 'esm',
    outdir: join(here, 'build/test'),
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  process.exit(0);
}

const out = join(here, 'dist');
const result = await esbuild.build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  write: false,
  outdir: out,
  entryNames: 'app',
  legalComments: 'eof',
  logLevel: 'warning',
});

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
const names = {};
for (const f of result.outputFiles) {
  const ext = f.path.endsWith('.css') ? 'css' : 'js';
  const hash = createHash('sha256').update(f.contents).digest('hex').slice(0, 12);
  const name = `assets/app-${hash}.${ext}`;
  names[ext] = name;
  writeFileSync(join(out, name), f.contents);
}
const html = readFileSync(join(here, 'index.html'), 'utf8')
  .replace('%CSS%', names.css)
  .replace('%JS%', names.js);
writeFileSync(join(out, 'index.html'), html);
for (const [ext, name] of Object.entries(names)) {
  const size = readFileSync(join(out, name)).length;
  const gz = gzipSync(readFileSync(join(out, name)), { level: 9 }).length;
  console.log(`${name}: ${size} bytes, ${gz} gzipped (${ext})`);
}

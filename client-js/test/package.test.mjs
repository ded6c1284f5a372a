// What `npm pack` ships, and the package.json fields a registry and a bundler read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));

test('npm pack ships the sources, the types, the bundle prepack builds, README and LICENSE, and nothing else', async () => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json'], { cwd: root, maxBuffer: 1 << 24 });
  // prepack (the bundle build) prints its sizes first; the JSON report follows
  const report = JSON.parse(stdout.slice(stdout.indexOf('[')));
  const shipped = report[0].files.map((f) => f.path).sort();
  const sources = readdirSync(`${root}src`).filter((f) => f.endsWith('.js')).map((f) => `src/${f}`);
  const expected = ['LICENSE', 'README.md', 'dist/sqs-push-client.js', 'index.d.ts', 'package.json', ...sources].sort();
  assert.deepEqual(shipped, expected);
  assert.equal(report[0].name, '@sqs-push/client');
});

test('package.json: license, public scoped publish, prepack build, exports with a default condition', () => {
  assert.equal(pkg.license, 'Apache-2.0');
  assert.deepEqual(pkg.publishConfig, { access: 'public' });
  assert.match(pkg.scripts.prepack, /scripts\/build\.mjs/);
  const main = pkg.exports['.'];
  assert.deepEqual(Object.keys(main), ['types', 'import', 'default'], 'types first, default last');
  assert.equal(main.default, './src/index.js');
  assert.equal(pkg.exports['./dist/sqs-push-client.js'].default, './dist/sqs-push-client.js');
  assert.equal(pkg.types, './index.d.ts');
});

test('the README stands alone: no links outside the package', () => {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const links = [...readme.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]);
  const outside = links.filter((l) => l.startsWith('../') || l.startsWith('/'));
  assert.deepEqual(outside, []);
});

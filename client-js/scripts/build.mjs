// Bundle the browser build (dist/sqs-push-client.js, ESM, minified) and print its sizes.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outfile = `${root}dist/sqs-push-client.js`;

await build({
  entryPoints: [`${root}src/index.js`],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'eof',
  sourcemap: false,
  logLevel: 'warning',
});

const code = readFileSync(outfile);
const gz = gzipSync(code, { level: 9 });
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/sqs-push-client.js  ${code.length} bytes (${kib(code.length)}) minified, ${gz.length} bytes (${kib(gz.length)}) gzipped`);

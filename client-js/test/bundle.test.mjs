// The browser bundle (npm run build → dist/sqs-push-client.js) exports the same API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encrypt, randomKey, requirePrerequisite, skipUnlessRequired } from './helpers.mjs';

const bundle = fileURLToPath(new URL('../dist/sqs-push-client.js', import.meta.url));
const missing = existsSync(bundle) ? null : 'dist/sqs-push-client.js is not built (run npm run build first)';

test('bundle: exports, decrypt, error names survive minification, no Node built-ins', { skip: skipUnlessRequired(missing) }, async () => {
  requirePrerequisite(missing);
  const m = await import(bundle);
  for (const name of ['SqsPushClient', 'decrypt', 'verifyMac', 'MacMismatchError', 'MalformedBodyError', 'MissingMacError']) {
    assert.ok(name in m, name);
  }
  const key = randomKey();
  const { body, mac } = encrypt('{"messageId":"b1"}', key);
  assert.deepEqual(await m.decrypt(body, key, mac), { messageId: 'b1' });
  await assert.rejects(m.decrypt(body, key, mac.replace(/^./, mac[0] === 'A' ? 'B' : 'A')), (e) => e.name === 'MacMismatchError' && e.code === 'MAC_MISMATCH');
  const src = readFileSync(bundle, 'utf8');
  assert.doesNotMatch(src, /\brequire\(|node:|process\.env/);
});

// Wire-format test vectors shared with the Rust and Python implementations:
// ../docs/wire-format.md, one ```json block between
// <!-- vectors:begin --> and <!-- vectors:end -->.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decrypt, decryptText, deriveMacKey, verifyMac, MacMismatchError } from '../src/index.js';
import { encrypt, macKeyOf } from './helpers.mjs';

const DOC = fileURLToPath(new URL('../../docs/wire-format.md', import.meta.url));

function loadVectors() {
  let text;
  try {
    text = readFileSync(DOC, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the wire-format vectors at ${DOC}: ${err.message}`);
  }
  const m = /<!--\s*vectors:begin\s*-->([\s\S]*?)<!--\s*vectors:end\s*-->/.exec(text);
  assert.ok(m, 'docs/wire-format.md has no <!-- vectors:begin --> … <!-- vectors:end --> section');
  const block = /```json\s*\n([\s\S]*?)```/.exec(m[1]);
  assert.ok(block, 'the vectors section has no ```json block');
  const vectors = JSON.parse(block[1]);
  assert.ok(Array.isArray(vectors) && vectors.length > 0, 'the vectors block is not a non-empty array');
  return vectors;
}

const vectors = loadVectors();
const LOW64 = (1n << 64n) - 1n;

function blocks(v) {
  return Math.ceil(Buffer.byteLength(v.plaintext, 'utf8') / 16);
}

function wrapsLow64(v) {
  const c = BigInt(v.counter);
  return blocks(v) > 1 && (c & LOW64) + BigInt(blocks(v) - 1) > LOW64;
}

for (const v of vectors) {
  test(`vector ${v.name}: decrypt(body, key, mac) gives the plaintext`, async () => {
    assert.equal(await decryptText(v.body, v.key, v.mac), v.plaintext);
    assert.deepEqual(await decrypt(v.body, v.key, v.mac), JSON.parse(v.plaintext));
    assert.equal(await verifyMac(v.body, v.key, v.mac), true);
  });

  test(`vector ${v.name}: body counter, mac_key and mac agree with node:crypto`, async () => {
    assert.equal(v.body.slice(0, v.body.indexOf('|')), String(v.counter));
    const ours = encrypt(v.plaintext, v.key, v.counter);
    assert.equal(ours.body, v.body);
    assert.equal(ours.mac, v.mac);
    const derived = Buffer.from(await deriveMacKey(v.key));
    assert.deepEqual(derived, macKeyOf(v.key));
    const given = /^[0-9a-f]{64}$/i.test(v.mac_key) ? Buffer.from(v.mac_key, 'hex') : Buffer.from(v.mac_key, 'base64');
    assert.deepEqual(derived, given, 'mac_key (hex or base64) matches HKDF of the key');
  });
}

for (const v of vectors) {
  test(`vector ${v.name}: any changed body byte or mac byte is rejected`, async () => {
    for (let i = 0; i < v.body.length; i++) {
      const ch = v.body[i] === 'A' ? 'B' : 'A';
      const changed = v.body.slice(0, i) + ch + v.body.slice(i + 1);
      await assert.rejects(decrypt(changed, v.key, v.mac), /MAC does not match|malformed/i, `byte ${i}`);
    }
    const tag = Buffer.from(v.mac, 'base64');
    tag[tag.length - 1] ^= 1;
    await assert.rejects(decrypt(v.body, v.key, tag.toString('base64')), MacMismatchError);
  });
}

test('a vector whose counter wraps in its low 64 bits is present and decrypts', async () => {
  const wrapping = vectors.filter(wrapsLow64);
  assert.ok(wrapping.length > 0, 'no vector has a counter whose low 64 bits wrap within the message');
  for (const v of wrapping) {
    assert.equal(await decryptText(v.body, v.key, v.mac), v.plaintext);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decrypt,
  decryptText,
  verifyMac,
  importKeys,
  parseBody,
  InvalidKeyError,
  MacMismatchError,
  MalformedBodyError,
  SqsPushError,
} from '../src/index.js';
import { encrypt, macOf, randomKey } from './helpers.mjs';

const key = randomKey();
const message = { message: 'Hello User', userId: 200, messageId: 'm-1', text: 'ünïcødé ☃ 😀' };
const plaintext = JSON.stringify(message);

test('round trip with a random counter, with and without the mac', async () => {
  const { body, mac } = encrypt(plaintext, key);
  assert.deepEqual(await decrypt(body, key, mac), message);
  assert.deepEqual(await decrypt(body, key), message);
  assert.deepEqual(await decrypt(body, key, null), message);
  assert.equal(await decryptText(body, key, mac), plaintext);
});

test('counter edge cases: 0, 2^64-1 (low-64 wrap), 2^128-1 (full wrap)', async () => {
  const long = JSON.stringify({ ...message, pad: 'x'.repeat(100) });
  for (const c of [0n, (1n << 64n) - 1n, (7n << 64n) | ((1n << 64n) - 1n), (1n << 128n) - 1n]) {
    const { body, mac } = encrypt(long, key, c);
    assert.equal(await decryptText(body, key, mac), long, `counter ${c}`);
  }
});

test('importKeys result is accepted wherever a key is', async () => {
  const keys = await importKeys(key);
  const { body, mac } = encrypt(plaintext, key);
  assert.deepEqual(await decrypt(body, keys, mac), message);
  assert.equal(await verifyMac(body, keys, mac), true);
  assert.equal(await importKeys(keys), keys);
  assert.deepEqual(await decrypt(body, Buffer.from(key, 'base64'), mac), message);
});

test('a flipped ciphertext byte is rejected by the mac', async () => {
  const { body, mac } = encrypt(plaintext, key);
  const bar = body.indexOf('|');
  const ct = Buffer.from(body.slice(bar + 1), 'base64');
  ct[3] ^= 0x01;
  const tampered = body.slice(0, bar + 1) + ct.toString('base64');
  assert.equal(await verifyMac(tampered, key, mac), false);
  await assert.rejects(decrypt(tampered, key, mac), MacMismatchError);
});

test('a changed counter is rejected by the mac', async () => {
  const { body, mac } = encrypt(plaintext, key, 1000n);
  await assert.rejects(decrypt(body.replace(/^1000/, '1001'), key, mac), MacMismatchError);
});

test('a wrong, truncated, non-base64 or other-key mac is rejected', async () => {
  const { body, mac } = encrypt(plaintext, key);
  const wrong = Buffer.from(mac, 'base64');
  wrong[0] ^= 0x80;
  for (const bad of [wrong.toString('base64'), mac.slice(0, 20), '!!!not base64!!!', '', macOf(body, randomKey())]) {
    assert.equal(await verifyMac(body, key, bad), false);
    await assert.rejects(decrypt(body, key, bad), (err) => {
      assert.ok(err instanceof MacMismatchError);
      assert.ok(err instanceof SqsPushError);
      assert.equal(err.code, 'MAC_MISMATCH');
      assert.ok(!err.message.includes(body) && !err.message.includes(key));
      return true;
    });
  }
});

test('the wrong key with the mac is a mismatch; without it, a malformed-body error', async () => {
  const { body, mac } = encrypt(plaintext, key);
  const other = randomKey();
  await assert.rejects(decrypt(body, other, mac), MacMismatchError);
  await assert.rejects(decrypt(body, other), MalformedBodyError);
});

test('malformed bodies raise MalformedBodyError with a clear message', async () => {
  const ct = Buffer.from('{"a":1}').toString('base64');
  const cases = [
    ['no separator', 'abc', /no "\|"/],
    ['empty counter', `|${ct}`, /counter is not a decimal integer/],
    ['negative counter', `-1|${ct}`, /counter is not a decimal integer/],
    ['hex counter', `0x10|${ct}`, /counter is not a decimal integer/],
    ['counter 2^128', `${1n << 128n}|${ct}`, /128 bits/],
    ['40-digit counter', `${'1'.repeat(40)}|${ct}`, /decimal integer/],
    ['leading zero', `042|${ct}`, /leading zeros/],
    ['plus sign', `+42|${ct}`, /decimal integer/],
    ['bad base64', '5|@@@@', /not standard padded base64/],
    ['base64url', '5|-_-_', /not standard padded base64/],
    ['unpadded base64', `5|${ct.replace(/=+$/, '')}`, /not standard padded base64/],
    ['base64 with whitespace', `5|${ct.slice(0, 4)} ${ct.slice(4)}`, /not standard padded base64/],
  ];
  for (const [name, body, re] of cases) {
    await assert.rejects(decrypt(body, key), (err) => {
      assert.ok(err instanceof MalformedBodyError, name);
      assert.equal(err.code, 'MALFORMED_BODY');
      assert.match(err.message, re, name);
      return true;
    });
    // still malformed when a valid mac for that body is supplied
    await assert.rejects(decrypt(body, key, macOf(body, key)), MalformedBodyError, name);
  }
  await assert.rejects(decrypt(42, key), MalformedBodyError);
  assert.throws(() => parseBody('1|@'), MalformedBodyError);
});

test('payloads that are not a UTF-8 JSON object are malformed', async () => {
  for (const [pt, re] of [['[1,2]', /not a JSON object/], ['"str"', /not a JSON object/], ['null', /not a JSON object/], ['{oops', /not valid JSON/]]) {
    const { body, mac } = encrypt(pt, key);
    await assert.rejects(decrypt(body, key, mac), (err) => err instanceof MalformedBodyError && re.test(err.message));
  }
  // invalid UTF-8: encrypt raw bytes 0xff 0xfe
  const { createCipheriv } = await import('node:crypto');
  const c = createCipheriv('aes-256-ctr', Buffer.from(key, 'base64'), Buffer.alloc(16));
  const body = `0|${Buffer.concat([c.update(Buffer.from([0xff, 0xfe, 0x7b])), c.final()]).toString('base64')}`;
  await assert.rejects(decrypt(body, key, macOf(body, key)), /not valid UTF-8/);
});

test('a key that is not base64 of 32 bytes is an InvalidKeyError', async () => {
  const { body, mac } = encrypt(plaintext, key);
  for (const bad of ['', 'short', Buffer.alloc(16).toString('base64'), key.replace(/\+/g, '-').replace(/\//g, '_') + '!', 42]) {
    await assert.rejects(decrypt(body, bad, mac), InvalidKeyError);
  }
});

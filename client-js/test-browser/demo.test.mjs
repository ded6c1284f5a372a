// The demo page in a real browser: Debian's Chromium driven by playwright-core, against the
// whole local stack (its own emulator and sqs-push-local on free ports).
//
//   npm run test:browser          (scripts/test runs it after building everything it needs)
//
// Needs: Chromium ($SQS_PUSH_CHROMIUM, default /usr/bin/chromium), the built bundle
// (npm run build), target/debug/sqs-push-local and target/debug/sqs-push (cargo build -p
// sqs-push-local -p sqs-push-cli; $SQS_PUSH_LOCAL_BIN and $SQS_PUSH_BIN override) and the .venv
// with the emulator. The screenshot goes to target/browser/demo.png ($SQS_PUSH_BROWSER_OUT).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { out, repo, startStack } from './stack.mjs';

const DELIVERY_LIMIT_MS = 5000;

let stack;
let api;
let callGw;
let page;
const pageErrors = [];

before(async () => {
  stack = await startStack('demo', { viewport: { width: 1100, height: 900 } });
  ({ api, callGw } = stack);
  page = stack.context.pages()[0] || (await stack.context.newPage());
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
});

after(async () => {
  if (stack) await stack.stop();
});

/** Rows of the messages table as objects (newest first). */
function rows() {
  return page.$$eval('#messages tbody tr', (trs) =>
    trs.map((tr) => {
      const [received, to, message, latency, messageId] = [...tr.cells].map((c) => c.textContent);
      return { received, to, message, latency, messageId };
    }),
  );
}

test('the demo page creates a session and shows messages sent with call_gw within 5 s', async (t) => {
  await page.goto(`${api}/`);
  assert.equal(await page.title(), 'sqs-push demo');
  assert.match(await page.inputValue('#sessionId'), /^[0-9a-f-]{36}$/, 'a random session id is filled in');
  assert.equal(await page.inputValue('#userId'), '200');

  await page.getByRole('button', { name: 'Create session and connect' }).click();
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 10_000 });
  assert.equal(await page.textContent('#info-queue').then((t) => t.startsWith('sqs-push-local_')), true);

  const t0 = Date.now();
  const [toUser, toEveryone] = await Promise.all([
    callGw(`/notify/user/200?message=Hello+User&sentAt=${Date.now()}`),
    callGw(`/notify?message=Hello+Everyone&sentAt=${Date.now()}`),
  ]);
  const sent = Date.now() - t0;
  assert.equal(toUser.success, true);
  assert.equal(toUser.sessionsMatched, 1);
  assert.equal(toEveryone.success, true);
  // Everyone is a segmented fan-out: answered at once with the plan (docs/http-api.md).
  assert.ok(toEveryone.segments >= 1);

  await page.waitForFunction(() => document.querySelectorAll('#messages tbody tr').length >= 2, null, {
    timeout: DELIVERY_LIMIT_MS,
  });
  const shown = Date.now() - t0;
  const got = await rows();
  const user = got.find((r) => r.messageId === toUser.messageId);
  const everyone = got.find((r) => r.messageId === toEveryone.messageId);
  assert.ok(user, 'the user message is on the page');
  assert.ok(everyone, 'the everyone message is on the page');
  assert.deepEqual([user.to, user.message], ['user 200', 'Hello User']);
  assert.deepEqual([everyone.to, everyone.message], ['everyone', 'Hello Everyone']);
  for (const r of [user, everyone]) {
    assert.match(r.latency, /^\d+ ms$/, 'latency is shown');
    assert.ok(parseInt(r.latency, 10) < DELIVERY_LIMIT_MS, `latency ${r.latency}`);
  }
  t.diagnostic(
    `call_gw x2 took ${sent} ms; both shown after ${shown} ms (page latency: user ${user.latency}, everyone ${everyone.latency})`,
  );
});

test("the page's own send button reaches its session", async () => {
  const before = (await rows()).length;
  await page.fill('#text', 'Hello Session');
  await page.getByRole('button', { name: 'this session' }).click();
  await page.waitForFunction((n) => document.querySelectorAll('#messages tbody tr').length > n, before, {
    timeout: DELIVERY_LIMIT_MS,
  });
  const [newest] = await rows();
  assert.deepEqual([newest.to, newest.message], ['session', 'Hello Session']);
  assert.match(newest.latency, /^\d+ ms$/);
  assert.match(await page.textContent('#send-result'), /1 session\(s\) matched/);

});

test("the page's channel box subscribes its session and a publish to the channel arrives", async () => {
  await page.fill('#channel', 'room:7');
  await page.getByRole('button', { name: 'Join the channel' }).click();
  await page.waitForFunction(() => /Subscribed to room:7/.test(document.querySelector('#channel-result').textContent), null, {
    timeout: DELIVERY_LIMIT_MS,
  });
  const count = await callGw('/channels/room:7');
  assert.equal(count.sessions, 1, 'the page\'s session is the one subscriber');
  const before = (await rows()).length;
  await page.fill('#text', 'Hello Channel');
  await page.getByRole('button', { name: 'the channel (room:7)' }).click();
  await page.waitForFunction((n) => document.querySelectorAll('#messages tbody tr').length > n, before, {
    timeout: DELIVERY_LIMIT_MS,
  });
  const [newest] = await rows();
  assert.deepEqual([newest.to, newest.message], ['channel room:7', 'Hello Channel']);
  // A publish from the backend (signed) reaches it too, once.
  const published = await callGw('/notify/channel/room:7?message=From+the+backend');
  assert.equal(published.sessionsMatched, 1);
  await page.waitForFunction(
    (id) => [...document.querySelectorAll('#messages tbody tr')].some((tr) => tr.cells[4].textContent === id),
    published.messageId,
    { timeout: DELIVERY_LIMIT_MS },
  );
  const shown = (await rows()).filter((r) => r.messageId === published.messageId);
  assert.deepEqual(shown.map((r) => [r.to, r.message]), [['channel room:7', 'From the backend']]);

  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: join(out, 'demo.png'), fullPage: true });
});

test('the wire-format vectors decrypt in Chromium, the low-64-bit counter wrap included', async () => {
  const doc = readFileSync(join(repo, 'docs/wire-format.md'), 'utf8');
  const section = /<!--\s*vectors:begin\s*-->([\s\S]*?)<!--\s*vectors:end\s*-->/.exec(doc);
  assert.ok(section, 'docs/wire-format.md has a vectors section');
  const vectors = JSON.parse(/```json\s*\n([\s\S]*?)```/.exec(section[1])[1]);
  const results = await page.evaluate(async (vs) => {
    const { decryptText } = await import('/local-demo/sqs-push-client.js');
    const outcome = [];
    for (const v of vs) {
      try {
        outcome.push((await decryptText(v.body, v.key, v.mac)) === v.plaintext ? 'ok' : 'wrong plaintext');
      } catch (err) {
        outcome.push(`${err.name}: ${err.message}`);
      }
    }
    return outcome;
  }, vectors);
  assert.deepEqual(
    results.map((r, i) => [vectors[i].name, r]),
    vectors.map((v) => [v.name, 'ok']),
  );
  const low64 = (1n << 64n) - 1n;
  const wraps = vectors.some((v) => {
    const blocks = Math.ceil(Buffer.byteLength(v.plaintext, 'utf8') / 16);
    return blocks > 1 && (BigInt(v.counter) & low64) + BigInt(blocks - 1) > low64;
  });
  assert.ok(wraps, 'a vector wraps the low 64 bits of the counter');
});

test('the page logged no errors', async () => {
  const logged = await page.$$eval('#log li.error', (items) => items.map((li) => li.textContent));
  assert.deepEqual(logged, []);
  assert.deepEqual(pageErrors, []);
});

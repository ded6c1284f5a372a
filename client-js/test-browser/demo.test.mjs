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
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const target = process.env.CARGO_TARGET_DIR ? join(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target');
const out = process.env.SQS_PUSH_BROWSER_OUT || join(target, 'browser');
const chromiumPath = process.env.SQS_PUSH_CHROMIUM || '/usr/bin/chromium';
const localBin = process.env.SQS_PUSH_LOCAL_BIN || join(target, 'debug/sqs-push-local');
const cliBin = process.env.SQS_PUSH_BIN || join(target, 'debug/sqs-push');
const DELIVERY_LIMIT_MS = 5000;

const run = promisify(execFile);
const children = [];
let api;
let context;
let page;
let profile;
const pageErrors = [];

/** A TCP port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Start a process with its output in `${out}/${name}.log`; it is stopped after the tests. */
function startProcess(name, command, args) {
  const log = createWriteStream(join(out, `${name}.log`));
  const child = spawn(command, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  children.push(child);
  return child;
}

/** Resolve when `child` prints the line `line`; reject when it exits or after `ms`. */
function waitForLine(child, line, name, ms) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(`${name} did not print "${line}" within ${ms} ms`), ms);
    const onData = (chunk) => {
      seen += chunk;
      if (seen.split('\n').includes(line)) done();
    };
    const onExit = (code) => fail(`${name} exited (code ${code}) before "${line}"; see ${out}/${name}.log`);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
    };
    const done = () => (cleanup(), resolve());
    const fail = (why) => (cleanup(), reject(new Error(why)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Resolve when `url` gives any HTTP answer. */
async function waitForHttp(url, child, name, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (code ${child.exitCode}); see ${out}/${name}.log`);
    try {
      await (await fetch(url)).arrayBuffer();
      return;
    } catch {
      if (Date.now() > end) throw new Error(`${name} gave no HTTP answer at ${url} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** `scripts/call_gw local us-east-1 PATH` against this test's stack; resolves with the JSON answer. */
async function callGw(path) {
  const { stdout } = await run(join(repo, 'scripts/call_gw'), ['local', 'us-east-1', path], {
    cwd: repo,
    env: { ...process.env, SQS_PUSH_LOCAL_API_URL: api, SQS_PUSH_BIN: cliBin },
  });
  return JSON.parse(stdout);
}

function need(path, what) {
  assert.ok(existsSync(path), `${path} is missing: ${what}`);
}

before(async () => {
  need(chromiumPath, 'install Chromium (scripts/test does: apt-get install chromium) or set SQS_PUSH_CHROMIUM');
  need(join(repo, 'client-js/dist/sqs-push-client.js'), 'run `npm run build` in client-js');
  need(localBin, 'run `cargo build -p sqs-push-local`');
  need(cliBin, 'run `cargo build -p sqs-push-cli`');
  mkdirSync(out, { recursive: true });

  const [emulatorPort, apiPort] = await Promise.all([freePort(), freePort()]);
  const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
  const emulator = startProcess('emulator', join(repo, 'scripts/emulator'), ['--port', String(emulatorPort)]);
  await waitForHttp(`${emulatorUrl}/`, emulator, 'emulator', 60_000);
  const local = startProcess('sqs-push-local', localBin, ['--listen', `127.0.0.1:${apiPort}`, '--emulator', emulatorUrl]);
  await waitForLine(local, 'ready', 'sqs-push-local', 30_000);
  api = `http://127.0.0.1:${apiPort}`;

  profile = mkdtempSync(join(tmpdir(), 'sqs-push-chromium-')); // a fresh --user-data-dir
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1100, height: 900 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
});

after(async () => {
  if (context) await context.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  for (const child of children.reverse()) {
    if (child.exitCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
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

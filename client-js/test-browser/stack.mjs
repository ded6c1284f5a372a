// The local stack for browser tests: its own emulator and sqs-push-local on free ports, Chromium
// (playwright-core) with a fresh profile, and `scripts/call_gw` against that stack.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
const target = process.env.CARGO_TARGET_DIR ? join(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target');
export const out = process.env.SQS_PUSH_BROWSER_OUT || join(target, 'browser');
const chromiumPath = process.env.SQS_PUSH_CHROMIUM || '/usr/bin/chromium';
const localBin = process.env.SQS_PUSH_LOCAL_BIN || join(target, 'debug/sqs-push-local');
const cliBin = process.env.SQS_PUSH_BIN || join(target, 'debug/sqs-push');
const run = promisify(execFile);

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

function need(path, what) {
  assert.ok(existsSync(path), `${path} is missing: ${what}`);
}

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

/**
 * Start the emulator, sqs-push-local (with `localArgs`, and `localEnv` added to its environment)
 * and Chromium. Logs go to `${out}/${prefix}-*.log`. Resolves with { api, emulator, context,
 * newContext(), callGw(path), stop() }; `newContext()` starts another Chromium with its own
 * fresh profile (another browser: no shared storage, locks or channels), stopped by `stop()`.
 */
export async function startStack(prefix, { viewport, localArgs = [], localEnv = {} } = {}) {
  need(chromiumPath, 'install Chromium (scripts/test does: apt-get install chromium) or set SQS_PUSH_CHROMIUM');
  need(join(repo, 'client-js/dist/sqs-push-client.js'), 'run `npm run build` in client-js');
  need(localBin, 'run `cargo build -p sqs-push-local`');
  need(cliBin, 'run `cargo build -p sqs-push-cli`');
  mkdirSync(out, { recursive: true });
  const children = [];
  const startProcess = (name, command, args, env = {}) => {
    const log = createWriteStream(join(out, `${prefix}-${name}.log`));
    const child = spawn(command, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    children.push(child);
    return child;
  };
  let context;
  let profile;
  const extra = []; // { context, profile } from newContext()
  const stop = async () => {
    for (const e of extra.splice(0)) {
      await e.context.close().catch(() => {});
      rmSync(e.profile, { recursive: true, force: true });
    }
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
  };
  try {
    const [emulatorPort, apiPort] = await Promise.all([freePort(), freePort()]);
    const emulator = `http://127.0.0.1:${emulatorPort}`;
    const emu = startProcess('emulator', join(repo, 'scripts/emulator'), ['--port', String(emulatorPort)]);
    await waitForHttp(`${emulator}/`, emu, 'emulator', 60_000);
    const local = startProcess(
      'sqs-push-local',
      localBin,
      ['--listen', `127.0.0.1:${apiPort}`, '--emulator', emulator, ...localArgs],
      localEnv,
    );
    await waitForLine(local, 'ready', 'sqs-push-local', 30_000);
    const api = `http://127.0.0.1:${apiPort}`;
    const launch = (dir) =>
      chromium.launchPersistentContext(dir, {
        executablePath: chromiumPath,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        ...(viewport ? { viewport } : {}),
      });
    profile = mkdtempSync(join(tmpdir(), 'sqs-push-chromium-'));
    context = await launch(profile);
    const newContext = async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sqs-push-chromium-'));
      const ctx = await launch(dir);
      extra.push({ context: ctx, profile: dir });
      return ctx;
    };
    const callGw = async (path) => {
      const { stdout } = await run(join(repo, 'scripts/call_gw'), ['local', 'us-east-1', path], {
        cwd: repo,
        env: { ...process.env, SQS_PUSH_LOCAL_API_URL: api, SQS_PUSH_BIN: cliBin },
      });
      return JSON.parse(stdout);
    };
    return { api, emulator, context, newContext, callGw, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

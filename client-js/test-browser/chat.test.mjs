// The demo page's chat on a channel with presence, in two real browsers (two Chromium processes,
// each its own profile) against the whole local stack: each page joins the chat, each sees the
// other join, a line typed in one shows in the other (page → upstream queue → consumer → app queue
// → the stack's demo chat app → channel → the other page's queue), and when one browser closes the
// other sees it leave.
//
// The stack runs with --demo-chat (the app that publishes chat lines), a short presence window
// (SQS_PUSH_ONLINE_SECONDS) and a frequent presence sweep (--presence-sweep-ms), and the pages
// heartbeat every second (?heartbeat=1), so that a closed browser is offline within seconds
// instead of 90 s; the times measured are printed.
//
//   npm run test:browser          (or node --test test-browser/chat.test.mjs; after npm run build
//                                 and the cargo builds, see stack.mjs)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { out, startStack } from './stack.mjs';

/** A heartbeat a second; the server counts a session online for ONLINE_SECONDS after one. */
const HEARTBEAT_SECONDS = 1;
const ONLINE_SECONDS = 5;
const SWEEP_MS = 500;
const JOIN_LIMIT_MS = 10_000;
const CHAT_LIMIT_MS = 10_000;
/** Offline after ONLINE_SECONDS without a heartbeat, seen at the next sweep, then delivered. */
const LEAVE_LIMIT_MS = (ONLINE_SECONDS + 10) * 1000;

let stack;
const pageErrors = [];
const channel = `chat-${Date.now()}`;

before(async () => {
  stack = await startStack('chat', {
    viewport: { width: 1100, height: 1000 },
    localArgs: ['--demo-chat', '--presence-sweep-ms', String(SWEEP_MS)],
    localEnv: { SQS_PUSH_ONLINE_SECONDS: String(ONLINE_SECONDS) },
  });
});

after(async () => {
  if (stack) await stack.stop();
});

/**
 * Open the demo page in `context` as user `userId` and join the chat on `channel`: the button
 * creates the session, subscribes it with presence and starts the client.
 */
async function openChat(context, userId) {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(`${userId}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`${userId}: ${msg.text()}`);
  });
  await page.goto(`${stack.api}/?heartbeat=${HEARTBEAT_SECONDS}`);
  await page.fill('#userId', String(userId));
  await page.fill('#channel', channel);
  await page.getByRole('button', { name: 'Join the chat' }).click();
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 10_000 });
  await page.waitForFunction((ch) => document.querySelector('#chat-heading').textContent === `Chat on ${ch}`, channel, {
    timeout: 10_000,
  });
  return page;
}

const onlineUsers = (page) => page.$$eval('#online li', (lis) => lis.map((li) => li.dataset.userId).sort());
const chatLines = (page) => page.$$eval('#chat-log li', (lis) => lis.map((li) => li.textContent));

async function waitFor(page, fn, arg, ms, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
  } catch (err) {
    const state = { online: await onlineUsers(page).catch(() => 'gone'), chat: await chatLines(page).catch(() => 'gone') };
    throw new Error(`${what}: not within ${ms} ms (${JSON.stringify(state)})`, { cause: err });
  }
}

const hasOnline = (user) => [...document.querySelectorAll('#online li')].some((li) => li.dataset.userId === user);
const hasLine = (text) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent === text);

test('two browsers on one channel with presence see each other join, chat and leave', async (t) => {
  const a = await openChat(stack.context, 200);
  await waitFor(a, hasOnline, '200', JOIN_LIMIT_MS, 'A sees itself online');

  const t0 = Date.now();
  const contextB = await stack.newContext();
  const b = await openChat(contextB, 201);
  await waitFor(b, hasOnline, '200', JOIN_LIMIT_MS, 'B sees A online');
  await waitFor(b, hasOnline, '201', JOIN_LIMIT_MS, 'B sees itself online');
  await waitFor(a, hasOnline, '201', JOIN_LIMIT_MS, 'A sees B join');
  const joinMs = Date.now() - t0;
  await waitFor(a, hasLine, 'user 201 joined', JOIN_LIMIT_MS, "A's chat log shows B joining");

  // A line from A, through the upstream and the app, to both pages
  let t1 = Date.now();
  await a.fill('#chat-text', 'Hello from A');
  await a.getByRole('button', { name: 'Send', exact: true }).click();
  await waitFor(a, () => /Sent upstream \(SQS message [0-9a-f-]+\)/.test(document.querySelector('#chat-result').textContent), null, 5000, 'A sent it upstream');
  await waitFor(b, hasLine, 'user 200: Hello from A', CHAT_LIMIT_MS, 'B shows A\'s line');
  const chatMs = Date.now() - t1;
  await waitFor(a, hasLine, 'you: Hello from A', CHAT_LIMIT_MS, 'A shows its own line back from the channel');

  t1 = Date.now();
  await b.fill('#chat-text', 'Hi A, B here');
  await b.getByRole('button', { name: 'Send', exact: true }).click();
  await waitFor(a, hasLine, 'user 201: Hi A, B here', CHAT_LIMIT_MS, 'A shows B\'s line');
  const replyMs = Date.now() - t1;

  // B's browser closes: no goodbye, the heartbeats stop, A sees B leave
  const t2 = Date.now();
  await contextB.close();
  await waitFor(a, (user) => ![...document.querySelectorAll('#online li')].some((li) => li.dataset.userId === user), '201', LEAVE_LIMIT_MS, 'A sees B leave');
  const leaveMs = Date.now() - t2;
  await waitFor(a, hasLine, 'user 201 left', 2000, "A's chat log shows B leaving");
  assert.deepEqual(await onlineUsers(a), ['200'], 'A alone online');

  await a.screenshot({ path: join(out, 'chat.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
  t.diagnostic(
    `join seen by A ${joinMs} ms after B opened; A→B line ${chatMs} ms, B→A ${replyMs} ms; ` +
      `leave seen ${leaveMs} ms after B closed (online window ${ONLINE_SECONDS} s, heartbeat ${HEARTBEAT_SECONDS} s, sweep ${SWEEP_MS} ms)`,
  );
});

// The client's cost and tab sharing in real Chromium against the real local stack, counted at the
// browser: every SQS request a tab makes, by X-Amz-Target (Playwright's request events). The
// emulator's own totals (GET /_emulator/stats) no longer isolate the browsers: the local stack's
// consumer polls the upstream queue with ReceiveMessage too. Heartbeats (SendMessage to the
// upstream queue, the leader tab only, once a minute while visible) are counted apart.
//
//   npm run test:browser          (after npm run build and the cargo builds; see stack.mjs)
//
// Cases: one visible tab idle (defaults, 60 s window); one hidden tab idle (hiddenPollSeconds 5
// instead of the default 600, 30 s window, extrapolated: requests per hidden poll × polls per hour
// at the default); two tabs on one session (one poller, every message once in each); the leader
// tab closed mid-stream (nothing lost or doubled); a destroyed session ends within one poll;
// offline (the context's own offline switch) pauses and online drains.
// The counts are written to target/browser/client-requests.json (docs/benchmarks.md).
//
// Headless Chromium reports every page as visible (minimizing its window through CDP changes
// nothing), so "hidden" is set through a hook on Document.prototype.visibilityState that fires
// a real visibilitychange event; everything else (Web Locks, BroadcastChannel, fetch, tab close)
// is the browser's own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { out, startStack } from './stack.mjs';

const VISIBLE_WINDOW_S = 60;
const HIDDEN_WINDOW_S = 30;
const HIDDEN_POLL_S = 5; // test value; the default is 600
const DEFAULT_HIDDEN_POLL_S = 600;
const TWO_TABS_IDLE_WINDOW_S = 40;
const OFFLINE_WINDOW_S = 22;
const VISIBILITY_TIMEOUT_S = 30; // the queues' default: what a closed leader's taken messages wait

let stack;
const pageErrors = [];
const results = {};
let nextUser = 7000;

before(async () => {
  stack = await startStack('client');
  await stack.context.addInitScript(() => {
    let hidden = false;
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
    window.__setHidden = (h) => {
      hidden = h;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
});

after(async () => {
  if (stack) await stack.stop();
  writeFileSync(join(out, 'client-requests.json'), JSON.stringify(results, null, 2) + '\n');
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** SQS requests every tab of the test made so far, by operation (openTab counts them). */
const browserRequests = { receive: 0, delete: 0, send: 0 };
const OPERATION_KEYS = {
  'AmazonSQS.ReceiveMessage': 'receive',
  'AmazonSQS.DeleteMessageBatch': 'delete',
  'AmazonSQS.SendMessage': 'send',
};

async function sqsCounts() {
  return { ...browserRequests };
}

function since(c0, c1) {
  return { receive: c1.receive - c0.receive, delete: c1.delete - c0.delete, heartbeats: c1.send - c0.send };
}

async function newSession() {
  const user = nextUser++;
  const sid = `tab-test-${user}`;
  const answer = await stack.callGw(`/create/100/${user}/${sid}`);
  assert.equal(answer.success, true);
  return { user, sid, session: answer.session };
}

/** Open a tab on the stack's origin running a client for `session`; `hidden` before it starts. */
async function openTab(session, options = {}, { hidden = false } = {}) {
  const page = await stack.context.newPage();
  page.sqsRequests = 0;
  page.on('request', (req) => {
    const target = req.headers()['x-amz-target'] || '';
    if (req.method() !== 'POST' || !target.startsWith('AmazonSQS.')) return;
    page.sqsRequests += 1;
    const key = OPERATION_KEYS[target];
    if (key) browserRequests[key] += 1;
  });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  // Any page of the stack's origin will do: the demo page, whose own client starts only on a click.
  await page.goto(`${stack.api}/`);
  await page.evaluate(
    async ({ session, options, hidden }) => {
      if (hidden) window.__setHidden(true);
      const { SqsPushClient } = await import('/local-demo/sqs-push-client.js');
      Object.assign(window, { got: [], states: [], roles: [], ended: [], errors: [] });
      const client = new SqsPushClient({ session, ...options });
      client
        .on('message', (m) => window.got.push(m.messageId))
        .on('state', (s) => window.states.push(s))
        .on('role', (r) => window.roles.push(r))
        .on('ended', (e) => window.ended.push(e.reason))
        .on('error', (e) => window.errors.push(`${e.name}: ${e.message}`));
      window.client = client;
      client.start();
    },
    { session, options, hidden },
  );
  return page;
}

const tabState = (page) => page.evaluate(() => ({ state: client.state, role: client.role, got: [...got], errors: [...errors], ended: [...ended] }));

async function waitFor(page, fn, arg, ms, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
  } catch (err) {
    throw new Error(`${what}: not within ${ms} ms (${JSON.stringify(await tabState(page).catch(() => 'page gone'))})`, { cause: err });
  }
}

async function notifyUser(user, text) {
  const answer = await stack.callGw(`/notify/user/${user}?message=${encodeURIComponent(text)}`);
  assert.equal(answer.success, true);
  return answer.messageId;
}

test(`one visible tab, idle: requests in ${VISIBLE_WINDOW_S} s at the defaults`, async (t) => {
  const page = await openTab((await newSession()).session);
  await waitFor(page, () => client.state === 'connected' && client.role === 'leader', null, 10_000, 'connected');
  await sleep(1000);
  const c0 = await sqsCounts();
  await sleep(VISIBLE_WINDOW_S * 1000);
  const n = since(c0, await sqsCounts());
  const perHour = ((n.receive + n.delete) * 3600) / VISIBLE_WINDOW_S;
  results.visibleIdle = { windowSeconds: VISIBLE_WINDOW_S, ...n, perHour };
  t.diagnostic(
    `visible idle: ${n.receive} ReceiveMessage, ${n.delete} DeleteMessageBatch in ${VISIBLE_WINDOW_S} s → ${perHour}/hour; ` +
      `${n.heartbeats} heartbeat(s) (SendMessage) → ${(n.heartbeats * 3600) / VISIBLE_WINDOW_S}/hour`,
  );
  // 20-second long polls: 3 in 60 s (one more or less by phase)
  assert.ok(n.receive >= 2 && n.receive <= 4, `${n.receive} polls`);
  assert.equal(n.delete, 0);
  // heartbeats at the default 60 s: one in the window (two by phase), never more
  assert.ok(n.heartbeats >= 1 && n.heartbeats <= 2, `${n.heartbeats} heartbeats in ${VISIBLE_WINDOW_S} s`);
  await page.close(); // the counts add every tab up: one case at a time
});

test(`one hidden tab, idle: one poll per hiddenPollSeconds, ≤ 40 requests/hour at the default`, async (t) => {
  const { user, session } = await newSession();
  const page = await openTab(session, { hiddenPollSeconds: HIDDEN_POLL_S }, { hidden: true });
  await waitFor(page, () => client.state === 'connected', null, 10_000, 'connected');
  await sleep(500);
  const c0 = await sqsCounts();
  await sleep(HIDDEN_WINDOW_S * 1000);
  const n = since(c0, await sqsCounts());
  const polls = HIDDEN_WINDOW_S / HIDDEN_POLL_S;
  const perPoll = (n.receive + n.delete) / polls;
  const perHour = perPoll * (3600 / DEFAULT_HIDDEN_POLL_S);
  results.hiddenIdle = { windowSeconds: HIDDEN_WINDOW_S, hiddenPollSeconds: HIDDEN_POLL_S, ...n, perPoll, perHourAtDefault: perHour };
  t.diagnostic(
    `hidden idle: ${n.receive} ReceiveMessage, ${n.delete} DeleteMessageBatch in ${HIDDEN_WINDOW_S} s at hiddenPollSeconds ${HIDDEN_POLL_S} → ${perPoll.toFixed(2)} per poll → ${perHour.toFixed(1)}/hour at ${DEFAULT_HIDDEN_POLL_S} s`,
  );
  assert.ok(n.receive >= polls - 1 && n.receive <= polls + 1, `${n.receive} polls in ${HIDDEN_WINDOW_S} s`);
  assert.equal(n.delete, 0);
  assert.equal(n.heartbeats, 0, 'no heartbeat while hidden');
  assert.ok(perHour <= 40, `${perHour} requests/hour hidden`);

  // Visible again: the backlog is drained at once, not at the next hidden poll.
  const id = await notifyUser(user, 'while hidden');
  await sleep(200);
  const t0 = Date.now();
  await page.evaluate(() => window.__setHidden(false));
  await waitFor(page, (mid) => got.includes(mid), id, 3000, 'drained when visible');
  results.hiddenIdle.drainMs = Date.now() - t0;
  t.diagnostic(`visible again: the waiting message shown after ${Date.now() - t0} ms`);
  await page.close();
});

test('offline: paused, no requests; online again drains at once', async (t) => {
  const { user, session } = await newSession();
  const page = await openTab(session);
  await waitFor(page, () => client.state === 'connected', null, 10_000, 'connected');
  await stack.context.setOffline(true); // the browser's own offline: the long poll in flight fails
  await waitFor(page, () => client.state === 'paused', null, 5000, 'paused');
  const c0 = await sqsCounts();
  await sleep(OFFLINE_WINDOW_S * 1000);
  const n = since(c0, await sqsCounts());
  // Sent after the window: the emulator kept the dropped long poll open server-side for up to
  // its 20 s, and a message it took would wait out the visibility timeout (30 s).
  const id = await notifyUser(user, 'while offline');
  assert.deepEqual(n, { receive: 0, delete: 0, heartbeats: 0 }, 'no request (nor heartbeat) while offline');
  const t0 = Date.now();
  await stack.context.setOffline(false);
  await waitFor(page, (mid) => got.includes(mid), id, 5000, 'drained when online');
  const drainMs = Date.now() - t0;
  const s = await tabState(page);
  assert.deepEqual(s.errors, [], 'going offline is not an error');
  results.offline = { windowSeconds: OFFLINE_WINDOW_S, ...n, drainMs };
  t.diagnostic(`offline: 0 requests in ${OFFLINE_WINDOW_S} s; the waiting message shown ${drainMs} ms after going online`);
  await page.close();
});

let shared; // { user, pages }

test('two tabs on one session: one poller; every message in both tabs once', async (t) => {
  const { user, session } = await newSession();
  const a = await openTab(session);
  await waitFor(a, () => client.role === 'leader' && client.state === 'connected', null, 10_000, 'a leads');
  const b = await openTab(session);
  await waitFor(b, () => client.role === 'follower' && client.state === 'connected', null, 10_000, 'b follows');
  shared = { user, a, b };
  // idle: the session's two tabs cost what one does
  await sleep(1000);
  const i0 = await sqsCounts();
  await sleep(TWO_TABS_IDLE_WINDOW_S * 1000);
  const idle = since(i0, await sqsCounts());
  const idlePerHour = ((idle.receive + idle.delete) * 3600) / TWO_TABS_IDLE_WINDOW_S;
  t.diagnostic(`two tabs idle: ${idle.receive} ReceiveMessage in ${TWO_TABS_IDLE_WINDOW_S} s → ${idlePerHour}/hour for the session`);
  assert.ok(idle.receive >= 1 && idle.receive <= 3, `${idle.receive} polls in ${TWO_TABS_IDLE_WINDOW_S} s: one poller`);
  const ids = [];
  const c0 = await sqsCounts();
  for (let i = 0; i < 10; i++) ids.push(await notifyUser(user, `shared ${i}`));
  for (const page of [a, b]) await waitFor(page, (n) => got.length >= n, ids.length, 10_000, 'ten messages');
  await sleep(1000); // duplicates, if any, would show by now
  const n = since(c0, await sqsCounts());
  const [sa, sb] = [await tabState(a), await tabState(b)];
  assert.deepEqual([...sa.got].sort(), [...ids].sort(), 'tab a: each message once');
  assert.deepEqual([...sb.got].sort(), [...ids].sort(), 'tab b: each message once');
  assert.equal(b.sqsRequests, 0, 'the follower sent no SQS request');
  assert.ok(a.sqsRequests > 0);
  results.twoTabs = {
    idleWindowSeconds: TWO_TABS_IDLE_WINDOW_S,
    idleReceive: idle.receive,
    idlePerHour,
    messages: ids.length,
    ...n,
    leaderRequests: a.sqsRequests,
    followerRequests: b.sqsRequests,
  };
  t.diagnostic(`two tabs, ${ids.length} messages: ${n.receive} ReceiveMessage + ${n.delete} DeleteMessageBatch, all from the leader (follower: ${b.sqsRequests})`);
  assert.deepEqual([sa.errors, sb.errors], [[], []]);
});

test('the leader tab closed mid-stream: another takes over within seconds; nothing lost or doubled', async (t) => {
  const { user, a, b } = shared;
  const before = (await tabState(b)).got.length;
  const c0 = await sqsCounts();
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push(await notifyUser(user, `stream ${i}`));
  await a.close(); // a real tab close: the browser releases a's Web Lock
  const closedAt = Date.now();
  await waitFor(b, () => client.role === 'leader', null, 5000, 'b takes over');
  const takeoverMs = Date.now() - closedAt;
  for (let i = 6; i < 12; i++) ids.push(await notifyUser(user, `stream ${i}`));
  // messages a had taken but not deleted come back after the visibility timeout
  await waitFor(b, (n) => got.length >= n, before + ids.length, (VISIBILITY_TIMEOUT_S + 15) * 1000, 'all twelve in b');
  await sleep(1000);
  const got = (await tabState(b)).got.slice(before);
  assert.deepEqual([...got].sort(), [...ids].sort(), 'each message once, none lost');
  const n = since(c0, await sqsCounts());
  results.leaderClosed = { messages: ids.length, takeoverMs, ...n };
  t.diagnostic(`leader closed: b led after ${takeoverMs} ms; ${ids.length} messages, each once; ${n.receive} ReceiveMessage + ${n.delete} DeleteMessageBatch`);
  await b.close();
});

/** True while the queue answers GetQueueAttributes (an unsigned JSON call the emulator accepts). */
async function queueExists(sqsUrl) {
  const res = await fetch(`${stack.emulator}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'AmazonSQS.GetQueueAttributes',
      authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify({ QueueUrl: sqsUrl, AttributeNames: ['QueueArn'] }),
  });
  await res.arrayBuffer();
  return res.ok;
}

test('a destroyed session: "ended" within one poll of its queue going away', async (t) => {
  const { user, sid, session } = await newSession();
  const visibleTab = await openTab(session);
  await waitFor(visibleTab, () => client.state === 'connected', null, 10_000, 'connected');
  await sleep(1000); // a long poll in flight
  assert.equal(await queueExists(session.sqsUrl), true);
  const destroyed = await stack.callGw(`/destroy/100/${user}/${sid}`);
  assert.equal(destroyed.success, true);
  const t0 = Date.now();
  while (await queueExists(session.sqsUrl)) {
    assert.ok(Date.now() - t0 < 30_000, 'the queue was not deleted within 30 s of destroy');
    await sleep(100);
  }
  const goneAt = Date.now();
  const c0 = await sqsCounts();
  // one long poll (20 s) may be in flight; the next one sees QueueDoesNotExist
  await waitFor(visibleTab, () => client.state === 'ended', null, 25_000, 'ended');
  const endedMs = Date.now() - goneAt;
  const n = since(c0, await sqsCounts());
  await sleep(2000);
  const after = since(c0, await sqsCounts());
  const s = await tabState(visibleTab);
  assert.deepEqual(s.ended, ['queue-gone']);
  assert.deepEqual(s.errors, []);
  assert.ok(n.receive <= 1, `${n.receive} polls after the queue went away before "ended"`);
  assert.equal(after.receive, n.receive, 'no poll after ended');
  results.destroyed = { queueDeletedAfterDestroyMs: goneAt - t0, endedAfterQueueGoneMs: endedMs, pollsAfterGone: n.receive };
  t.diagnostic(`destroyed: queue gone ${goneAt - t0} ms after destroy; ended ${endedMs} ms later after ${n.receive} poll(s)`);
  await visibleTab.close();
});

test('no page errors', () => {
  assert.deepEqual(pageErrors, []);
});

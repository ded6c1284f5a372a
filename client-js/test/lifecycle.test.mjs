// Listeners, hidden/offline pacing, the end of a session, clock skew and tab sharing (the
// heartbeat election over Node's BroadcastChannel; Web Locks are covered in Chromium by
// test-browser/tabs.test.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqsPushClient, HandlerError, SqsRequestError } from '../src/index.js';
import { amzDate } from '../src/sqs.js';
import { FakeSqs, encrypt, session, until } from './helpers.mjs';

/** A page double: visibility and network switched by the test, change events like a browser's. */
function fakePage({ visible = true, online = true } = {}) {
  const subs = new Set();
  return {
    state: { visible, online },
    visible() {
      return this.state.visible;
    },
    online() {
      return this.state.online;
    },
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
    set(change) {
      Object.assign(this.state, change);
      for (const fn of subs) fn();
    },
  };
}

function setup(opts = {}, sqsOpts) {
  const sqs = opts.sqs || new FakeSqs(sqsOpts);
  const s = opts.session || session();
  const got = [];
  const errors = [];
  const states = [];
  const client = new SqsPushClient({
    session: s,
    onError: (e) => errors.push(e),
    onState: (st) => states.push(st),
    fetch: sqs.fetch,
    random: () => 0,
    share: false,
    ...opts,
  });
  const send = (obj) => {
    const enc = encrypt(JSON.stringify(obj), s.aesKey);
    return sqs.send(enc.body, enc.mac);
  };
  return { sqs, s, got, errors, states, client, send };
}

test('on("message"), on("channel:<name>") and onMessage all receive; off() removes a listener', async () => {
  const onMessage = [];
  const { client, send, sqs } = setup({ onMessage: (m) => onMessage.push(m.messageId) });
  const all = [];
  const news = [];
  const sport = [];
  const sportFn = (m) => sport.push(m.messageId);
  client.on('message', (m) => all.push(m.messageId)).on('channel:news', (m) => news.push(m)).on('channel:sport', sportFn);
  client.off('channel:sport', sportFn);
  send({ message: 'a', messageId: 'm-1' });
  send({ message: 'b', channel: 'news', messageId: 'm-2' });
  send({ message: 'c', channel: 'sport', messageId: 'm-3' });
  client.start();
  await until(() => sqs.remaining === 0 && all.length === 3, 3000, 'three messages');
  await client.stop();
  assert.deepEqual(onMessage, ['m-1', 'm-2', 'm-3']);
  assert.deepEqual(all, ['m-1', 'm-2', 'm-3']);
  assert.deepEqual(news, [{ message: 'b', channel: 'news', messageId: 'm-2' }]);
  assert.deepEqual(sport, []);
});

test('a failing channel listener leaves the message in the queue; it is delivered again later', async () => {
  const { client, send, sqs, errors } = setup();
  let calls = 0;
  client.on('channel:news', () => {
    calls += 1;
    if (calls === 1) throw new Error('render failed');
  });
  send({ message: 'b', channel: 'news', messageId: 'm-9' });
  client.start();
  await until(() => errors.length === 1, 3000, 'handler error');
  assert.ok(errors[0] instanceof HandlerError);
  assert.equal(errors[0].messageId, 'm-9');
  assert.equal(sqs.remaining, 1, 'not deleted');
  sqs.redeliverAll();
  await until(() => sqs.remaining === 0, 3000, 'deleted after the second delivery');
  await client.stop();
  assert.equal(calls, 2);
});

test('hidden: one short poll per hiddenPollSeconds; visible again polls at once', async () => {
  const page = fakePage({ visible: false });
  const { client, sqs, send, states } = setup({ page, hiddenPollSeconds: 1, onMessage: () => {} });
  client.start();
  await new Promise((r) => setTimeout(r, 2500));
  const hidden = sqs.receives().length;
  // t = 0, 1, 2 s: three polls in 2.5 s, each waiting at most 1 s
  assert.ok(hidden >= 2 && hidden <= 3, `${hidden} polls in 2.5 s hidden`);
  assert.ok(sqs.receives().every((c) => c.body.WaitTimeSeconds <= 1));
  send({ message: 'x', messageId: 'm-1' });
  const t0 = Date.now();
  page.set({ visible: true });
  await until(() => sqs.remaining === 0, 500, 'drained as soon as visible');
  assert.ok(Date.now() - t0 < 500);
  await client.stop();
  assert.ok(!states.includes('paused'));
});

test('hidden: "pause" polls not at all while hidden; visible again drains the backlog', async () => {
  const page = fakePage({ visible: false });
  const got = [];
  const { client, sqs, send, states } = setup({ page, hidden: 'pause', onMessage: (m) => got.push(m.messageId) });
  client.start();
  send({ message: 'x', messageId: 'm-1' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sqs.receives().length, 0);
  assert.equal(client.state, 'paused');
  page.set({ visible: true });
  await until(() => got.length === 1, 1000, 'backlog drained');
  await client.stop();
  assert.deepEqual(states.slice(0, 3), ['connecting', 'paused', 'connected']);
});

test('offline pauses (a request failing because the network went away is not an error); online drains', async () => {
  const page = fakePage();
  const sqs = new FakeSqs({ emptyWaitMs: 5000 });
  // fetch as a browser does it: offline, requests fail, and so does the one in flight
  let dropInFlight = null;
  const fetch = (url, init) => {
    if (!page.state.online) return Promise.reject(new TypeError('Failed to fetch'));
    const wire = new AbortController(); // the connection: cut when the network goes
    init.signal.addEventListener('abort', () => wire.abort(), { once: true });
    const dropped = new Promise((_, reject) => {
      dropInFlight = () => {
        wire.abort();
        reject(new TypeError('Failed to fetch'));
      };
    });
    return Promise.race([sqs.fetch(url, { ...init, signal: wire.signal }), dropped]);
  };
  const got = [];
  const { client, send, errors } = setup({ sqs, fetch, page, onMessage: (m) => got.push(m.messageId) });
  client.start();
  await until(() => sqs.receives().length === 1, 1000, 'a poll in flight');
  page.state.online = false;
  dropInFlight();
  page.set({});
  await until(() => client.state === 'paused', 1000, 'paused');
  const polls = sqs.receives().length;
  send({ message: 'while offline', messageId: 'm-1' });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sqs.receives().length, polls, 'no poll while offline');
  page.set({ online: true });
  await until(() => got.length === 1, 1000, 'drained once online');
  await client.stop();
  assert.deepEqual(errors, []);
});

test('going offline drops the long poll in flight at once, even when fetch does not fail', async () => {
  const page = fakePage();
  const { client, sqs, errors } = setup({ page, onMessage: () => {} }, { emptyWaitMs: 5000 });
  client.start();
  await until(() => sqs.receives().length === 1, 1000, 'a poll in flight');
  page.set({ online: false });
  await until(() => client.state === 'paused', 200, 'paused at once');
  await client.stop();
  assert.deepEqual(errors, []);
});

test('hidden with "pause": the long poll in flight finishes (and delivers), then no more polls', async () => {
  const page = fakePage();
  const got = [];
  const { client, sqs, send } = setup({ page, hidden: 'pause', onMessage: (m) => got.push(m.messageId) }, { emptyWaitMs: 5000 });
  client.start();
  await until(() => sqs.receives().length === 1, 1000, 'a poll in flight');
  page.set({ visible: false });
  await new Promise((r) => setTimeout(r, 100));
  assert.notEqual(client.state, 'paused', 'the poll in flight is not dropped');
  send({ message: 'x', messageId: 'm-1' });
  await until(() => got.length === 1 && client.state === 'paused', 1000, 'delivered, then paused');
  const polls = sqs.receives().length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sqs.receives().length, polls);
  await client.stop();
});

const gone = (code) => ({ status: 400, body: { __type: code, message: 'The specified queue does not exist.' } });

for (const code of ['com.amazonaws.sqs#QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue']) {
  test(`the queue is gone (${code}): asked again newQueueRetries times, then ended, "ended" once, start() stays ended`, async () => {
    const { client, sqs, errors, states } = setup({ onMessage: () => {}, newQueueDelayMs: 1 });
    const ended = [];
    client.on('ended', (info) => ended.push(info));
    for (let i = 0; i < 10; i += 1) sqs.failNext.push(gone(code));
    client.start();
    await until(() => client.state === 'ended', 1000, 'ended');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sqs.receives().length, 1 + 3, 'asked again three times, then no more');
    assert.equal(ended.length, 1);
    assert.equal(ended[0].reason, 'queue-gone');
    assert.ok(ended[0].cause instanceof SqsRequestError && ended[0].cause.isQueueGone);
    assert.deepEqual(errors, []);
    client.start();
    await client.stop();
    assert.equal(client.state, 'ended');
    assert.equal(sqs.receives().length, 4);
    assert.deepEqual(states, ['connecting', 'ended']);
  });
}

test('a new queue not visible for its first polls: asked again, its messages arrive, not ended', async () => {
  const got = [];
  const { client, sqs, send, errors, states } = setup({
    onMessage: (m) => got.push(m.messageId),
    newQueueDelayMs: 1,
  });
  sqs.failNext.push(gone('com.amazonaws.sqs#QueueDoesNotExist'), gone('com.amazonaws.sqs#QueueDoesNotExist'));
  send({ message: 'welcome', messageId: 'm-1' });
  client.start();
  await until(() => got.length === 1, 1000, 'delivered');
  assert.deepEqual(got, ['m-1']);
  assert.notEqual(client.state, 'ended');
  assert.deepEqual(errors, [], 'a queue becoming visible is not an error');
  assert.deepEqual(states.slice(0, 2), ['connecting', 'connected']);
  await client.stop();
});

test('a queue that answered once and then does not exist: ended at once, not asked again', async () => {
  const { client, sqs } = setup({ onMessage: () => {}, waitTimeSeconds: 0, newQueueDelayMs: 1 });
  client.start();
  await until(() => sqs.receives().length >= 1 && client.state === 'connected', 1000, 'connected');
  const before = sqs.receives().length;
  for (let i = 0; i < 10; i += 1) sqs.failNext.push(gone('com.amazonaws.sqs#QueueDoesNotExist'));
  await until(() => client.state === 'ended', 1000, 'ended');
  assert.ok(sqs.receives().length <= before + 2, 'not asked again once it had answered');
  await client.stop();
});

test('renew resolving null (the session is gone): ended with reason "session-gone", no poll', async () => {
  const { client, sqs } = setup({
    session: session({ expires: 1 }),
    renew: () => null,
    onMessage: () => {},
  });
  const ended = [];
  client.on('ended', (info) => ended.push(info.reason));
  client.start();
  await until(() => client.state === 'ended', 1000, 'ended');
  await client.stop();
  assert.deepEqual(ended, ['session-gone']);
  assert.equal(sqs.receives().length, 0);
});

/** SigV4's time check as SQS answers it (JSON protocol), with the server's clock at `serverMs()`. */
function checkSignatureTime(sqs, serverMs, { dateHeader }) {
  const original = sqs.fetch;
  const refused = [];
  sqs.fetch = async (url, init) => {
    const signedAt = new Headers(init.headers).get('x-amz-date');
    const server = serverMs();
    const ms = Date.UTC(+signedAt.slice(0, 4), +signedAt.slice(4, 6) - 1, +signedAt.slice(6, 8), +signedAt.slice(9, 11), +signedAt.slice(11, 13), +signedAt.slice(13, 15));
    if (Math.abs(ms - server) > 5 * 60_000) {
      refused.push(signedAt);
      const message = ms < server
        ? `Signature expired: ${signedAt} is now earlier than ${amzDate(server - 5 * 60_000)} (${amzDate(server)} - 5 min.)`
        : `Signature not yet current: ${signedAt} is still later than ${amzDate(server + 5 * 60_000)} (${amzDate(server)} + 5 min.)`;
      const headers = dateHeader ? { date: new Date(server).toUTCString() } : {};
      return Response.json({ __type: 'com.amazon.coral.service#InvalidSignatureException', message }, { status: 400, headers });
    }
    return original(url, init);
  };
  return refused;
}

for (const [name, offsetMs, dateHeader] of [
  ['20 minutes slow, corrected from the message', -20 * 60_000, false],
  ['an hour fast, corrected from the Date header', 3600_000, true],
]) {
  test(`clock skew (${name}): refused once, re-signed with the server's time, no error reported`, async () => {
    const sqs = new FakeSqs();
    const refused = checkSignatureTime(sqs, () => Date.now(), { dateHeader });
    const got = [];
    const { client, send, errors } = setup({ sqs, now: () => Date.now() + offsetMs, onMessage: (m) => got.push(m.messageId) });
    send({ message: 'x', messageId: 'm-1' });
    client.start();
    await until(() => got.length === 1 && sqs.remaining === 0, 3000, 'delivered and deleted');
    await until(() => sqs.receives().length >= 3, 3000, 'more polls');
    await client.stop();
    assert.equal(refused.length, 1, 'only the first request was refused');
    assert.deepEqual(errors, []);
  });
}

test('clock skew that correcting does not fix is reported after one retry', async () => {
  const sqs = new FakeSqs();
  // a server whose clock jumps by an hour on every request: the correction never holds
  let jump = 0;
  const refused = checkSignatureTime(sqs, () => Date.now() + (jump += 3600_000), { dateHeader: true });
  const refusedAtError = [];
  const { client, errors } = setup({ sqs, onMessage: () => {}, backoffBaseMs: 50 });
  client.on('error', () => refusedAtError.push(refused.length));
  client.start();
  await until(() => errors.length >= 2, 3000, 'two errors');
  await client.stop();
  assert.ok(errors[0] instanceof SqsRequestError);
  assert.equal(errors[0].isClockSkewError, true);
  assert.equal(sqs.receives().length, 0, 'no request got through');
  // each poll: the request, one corrected retry, then the error
  assert.deepEqual(refusedAtError.slice(0, 2), [2, 4]);
});

test('share: tabs of one session elect one leader (heartbeat election); each message reaches every tab once; a leader that leaves is replaced', async () => {
  const sqs = new FakeSqs();
  const s = session({ sqsUrl: `http://127.0.0.1:4566/123456789012/sqs-push-local-share-${Date.now()}` });
  const tabs = ['a', 'b', 'c'].map((name) => {
    const calls = [];
    const got = [];
    const client = new SqsPushClient({
      session: s,
      share: true,
      page: fakePage(),
      fetch: (url, init) => {
        calls.push(new Headers(init.headers).get('x-amz-target'));
        return sqs.fetch(url, init);
      },
      onError: (e) => got.push(`error ${e.message}`),
      random: () => 0,
    });
    client.on('message', (m) => got.push(m.messageId));
    return { name, client, calls, got };
  });
  const send = (id) => {
    const enc = encrypt(JSON.stringify({ message: id, messageId: id }), s.aesKey);
    sqs.send(enc.body, enc.mac);
  };
  for (const t of tabs) t.client.start();
  await until(() => tabs.filter((t) => t.client.role === 'leader').length === 1 && tabs.every((t) => t.client.role), 3000, 'a leader');
  await new Promise((r) => setTimeout(r, 1500)); // a few heartbeats: still one leader
  const leaders = tabs.filter((t) => t.client.role === 'leader');
  assert.equal(leaders.length, 1);
  const [leader] = leaders;
  const followers = tabs.filter((t) => t !== leader);
  for (const id of ['m-1', 'm-2', 'm-3']) send(id);
  await until(() => tabs.every((t) => t.got.length === 3), 3000, 'every tab has the three messages');
  for (const t of tabs) assert.deepEqual(t.got, ['m-1', 'm-2', 'm-3'], `tab ${t.name}`);
  for (const f of followers) assert.deepEqual(f.calls, [], `follower ${f.name} made no SQS request`);
  assert.ok(followers.every((f) => f.client.state === 'connected'), 'followers show the leader state');

  await leader.client.stop();
  const t0 = Date.now();
  await until(() => followers.some((t) => t.client.role === 'leader'), 3000, 'a new leader');
  const took = Date.now() - t0;
  send('m-4');
  await until(() => followers.every((t) => t.got.length === 4), 3000, 'm-4 in the remaining tabs');
  for (const f of followers) assert.deepEqual(f.got, ['m-1', 'm-2', 'm-3', 'm-4'], `tab ${f.name}`);
  assert.equal(followers.filter((t) => t.client.role === 'leader').length, 1);
  for (const f of followers) await f.client.stop();
  assert.ok(took < 3000, `took over after ${took} ms`);
});

test('share: a message the old leader took but did not delete comes back and is not delivered twice', async () => {
  const sqs = new FakeSqs();
  const s = session({ sqsUrl: `http://127.0.0.1:4566/123456789012/sqs-push-local-dup-${Date.now()}` });
  const make = (name) => {
    const got = [];
    const client = new SqsPushClient({ session: s, share: true, page: fakePage(), fetch: sqs.fetch, random: () => 0 });
    client.on('message', async (m) => {
      got.push(m.messageId);
      // the leader's own handler hangs on m-1: the tab "closes" before deleting it
      if (client.role === 'leader' && m.messageId === 'm-1') await new Promise(() => {});
    });
    return { name, client, got };
  };
  const a = make('a');
  a.client.start();
  await until(() => a.client.role === 'leader', 3000, 'a leads');
  const b = make('b');
  b.client.start();
  await until(() => b.client.role === 'follower', 3000, 'b follows');
  await new Promise((r) => setTimeout(r, 100));
  const enc = encrypt(JSON.stringify({ message: 'x', messageId: 'm-1' }), s.aesKey);
  sqs.send(enc.body, enc.mac);
  await until(() => b.got.length === 1, 3000, 'b got m-1 from the leader');
  // a closes mid-handler (its stop() would wait for the handler, a closed tab does not)
  a.client.stop();
  await until(() => b.client.role === 'leader', 3000, 'b leads');
  sqs.redeliverAll(); // the visibility timeout runs out
  await until(() => sqs.remaining === 0, 3000, 'm-1 deleted by the new leader');
  await b.client.stop();
  assert.deepEqual(b.got, ['m-1'], 'delivered once in b');
});

test('share: a follower tab that crashed while visible stops counting after it misses the roll calls; a live one keeps counting', async (t) => {
  const sqs = new FakeSqs();
  const s = session({ sqsUrl: `http://127.0.0.1:4566/123456789012/sqs-push-local-ghost-${Date.now()}` });
  // The leader's clock, moved on by the test: roll calls and staleness are measured on it.
  let skipped = 0;
  const now = () => Date.now() + skipped;
  const leaderPage = fakePage({ visible: false });
  const leader = new SqsPushClient({ session: s, share: true, page: leaderPage, fetch: sqs.fetch, random: () => 0, now, hiddenPollSeconds: 1, onMessage: () => {} });
  t.after(() => leader.stop());
  leader.start();
  await until(() => leader.role === 'leader', 3000, 'the first tab leads');
  const mode = async () => {
    // the poll after any wait already begun: a live leader long-polls, a hidden one polls briefly
    const seen = sqs.receives().length;
    await until(() => sqs.receives().length > seen, 3000, 'a poll');
    return sqs.receives().at(-1).body.WaitTimeSeconds > 1 ? 'live' : 'hidden';
  };
  assert.equal(await mode(), 'hidden', 'hidden while no tab is visible');

  // A tab says "visible" and then dies without a goodbye: only its last word reaches the leader.
  const ghost = new BroadcastChannel(`sqs-push:${s.sqsUrl}`);
  ghost.postMessage({ t: 'data', id: 'ghost', data: { t: 'vis', tab: 'ghost', visible: true, hello: true } });
  ghost.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await mode(), 'live', 'a visible tab makes the leader poll at the visible rate');

  // Two roll calls later (40 s, then 40 s more on the leader's clock) the ghost has not answered.
  for (const step of [40_000, 40_000]) {
    skipped += step;
    await mode();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await mode(), 'hidden', 'the crashed tab no longer keeps the leader at the visible rate');

  // A live visible follower answers every roll call, so it keeps counting past the same window.
  const follower = new SqsPushClient({ session: s, share: true, page: fakePage({ visible: true }), fetch: sqs.fetch, random: () => 0, onMessage: () => {} });
  t.after(() => follower.stop());
  follower.start();
  await until(() => follower.role === 'follower', 3000, 'the second tab follows');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await mode(), 'live');
  for (const step of [40_000, 40_000, 40_000]) {
    skipped += step;
    await mode();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await mode(), 'live', `still live ${skipped / 1000} s on`);
  }
});

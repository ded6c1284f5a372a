// The way back, against the real emulator (moto): send and markRead put the contract's envelope on
// the upstream queue (created here, as the stack's create answer names it in `upstreamUrl`), hold
// messages while offline, retry transient failures, reject permanent refusals; heartbeats come
// from the leader tab only, at most once per interval, none while hidden.
//
// The emulator is SQS_PUSH_EMULATOR's (scripts/test) or one this file starts: nothing skips.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SqsPushClient, SendError, SqsRequestError } from '../src/index.js';
import { MAX_UPSTREAM_BYTES } from '../src/upstream.js';
import { createQueue, drainQueue, emulatorUrl, stopEmulator } from './emulator.mjs';
import { randomKey, until } from './helpers.mjs';

after(() => stopEmulator());

/**
 * Heartbeats are scheduled at most once per interval; the test sees them when their request is
 * made, which a loaded machine delays by some milliseconds after the schedule (signing, the
 * event loop), so gaps are compared with this much slack. Removing the pacing breaks them by far
 * more (a 100 ms pace: 35 heartbeats in 3.5 s; a new leader ignoring the pace: ~200 ms apart).
 */
const JITTER_MS = 100;

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

/**
 * The real fetch, recording each SendMessage's envelope (`sends`: { at, type, seq, envelope });
 * `failNext`: answers to give instead of the next SendMessage calls ('network' or a Response).
 */
function recordingFetch() {
  const rec = { sends: [], failNext: [] };
  rec.fetch = async (url, init) => {
    const target = new Headers(init.headers).get('x-amz-target');
    if (target === 'AmazonSQS.SendMessage') {
      const envelope = JSON.parse(JSON.parse(init.body).MessageBody);
      rec.sends.push({ at: Date.now(), type: envelope.type, seq: envelope.seq, envelope });
      const fail = rec.failNext.shift();
      if (fail === 'network') throw new TypeError('fetch failed');
      if (fail) return fail();
    }
    return fetch(url, init);
  };
  return rec;
}

/** A session as create answers it, on fresh emulator queues: its own queue and an upstream queue. */
async function setup(upstreamAttributes = { MaximumMessageSize: String(MAX_UPSTREAM_BYTES) }) {
  const emu = await emulatorUrl();
  const [sqsUrl, upstreamUrl] = await Promise.all([
    createQueue(emu, 'session'),
    createQueue(emu, 'upstream', upstreamAttributes),
  ]);
  const session = {
    sqsUrl,
    aesKey: randomKey(),
    accessKey: 'test',
    secretKey: 'test',
    sessionToken: 'test-session-token',
    expires: Math.floor(Date.now() / 1000) + 3600,
    region: 'us-east-1',
    accountId: 100,
    userId: 200,
    sessionId: `s-${Math.random().toString(36).slice(2)}`,
    upstreamUrl,
  };
  return { emu, session, upstreamUrl, upstream: () => drainQueue(emu, upstreamUrl) };
}

function client(session, opts = {}) {
  const errors = [];
  const c = new SqsPushClient({
    session,
    onMessage: () => {},
    onError: (e) => errors.push(e),
    share: false,
    heartbeatSeconds: 0,
    waitTimeSeconds: 1,
    random: () => 0.5,
    backoffBaseMs: 50,
    ...opts,
  });
  return { client: c, errors };
}

/** Rejects when `promise` has not settled within `ms`: a send that hangs is a failure, not a pass. */
function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

test('send puts the contract envelope on the upstream queue and resolves with its SQS MessageId', async () => {
  const { session, upstream } = await setup();
  const { client: c, errors } = client(session);
  const t0 = Date.now();
  const first = await c.send('chat', { text: 'hello', room: 'room:7' });
  const second = await c.send('typing', true);
  // a reload (a new client on the same session) numbers its messages apart from the first
  const third = await client(session).client.send('chat', { text: 'again' });
  const got = await upstream();
  assert.deepEqual(errors, []);
  assert.equal(got.length, 3);
  assert.deepEqual(got.map((m) => m.MessageId).sort(), [first.messageId, second.messageId, third.messageId].sort());
  const byId = new Map(got.map((m) => [m.MessageId, m]));
  const env = JSON.parse(byId.get(first.messageId).Body);
  assert.deepEqual(Object.keys(env), ['v', 'sessionId', 'seq', 'ts', 'type', 'body']);
  assert.equal(env.v, 1);
  assert.equal(env.sessionId, session.sessionId);
  assert.equal(env.seq, first.seq);
  assert.equal(env.type, 'chat');
  assert.deepEqual(env.body, { text: 'hello', room: 'room:7' });
  assert.ok(env.ts >= t0 - 1000 && env.ts <= Date.now() + 1000, 'ts is the time of sending (epoch ms)');
  assert.deepEqual(JSON.parse(byId.get(second.messageId).Body).body, true);
  assert.equal(byId.get(first.messageId).MessageAttributes, undefined, 'no message attributes');
  const seqs = got.map((m) => JSON.parse(m.Body).seq);
  for (const seq of seqs) assert.ok(Number.isSafeInteger(seq) && seq >= 1, `seq ${seq} is an integer in 1..2^53-1`);
  assert.equal(new Set(seqs).size, 3, 'seq is unique per session, across client instances');
  assert.equal(second.seq, first.seq + 1);
});

test('a send made offline is held (no request) and delivered once the page is back online', async () => {
  const { session, upstream } = await setup();
  const page = fakePage({ online: false });
  const rec = recordingFetch();
  const { client: c, errors } = client(session, { page, fetch: rec.fetch });
  let settled = false;
  const sending = c.send('chat', { text: 'written offline' }).finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(settled, false, 'still pending while offline');
  assert.equal(rec.sends.length, 0, 'no SendMessage while offline');
  assert.deepEqual(await upstream(), [], 'nothing on the upstream queue yet');
  page.set({ online: true });
  const sent = await within(sending, 10_000, 'the held send');
  const got = await upstream();
  assert.deepEqual(got.map((m) => m.MessageId), [sent.messageId]);
  assert.deepEqual(JSON.parse(got[0].Body).body, { text: 'written offline' });
  assert.equal(rec.sends.length, 1);
  assert.deepEqual(errors, [], 'being offline is not an error');
});

test('transient failures (network error, HTTP 503) are retried with backoff; the message arrives once', async () => {
  const { session, upstream } = await setup();
  const rec = recordingFetch();
  rec.failNext.push('network', () =>
    Response.json({ __type: 'com.amazonaws.sqs#ServiceUnavailable', message: 'try later' }, { status: 503 }),
  );
  const { client: c, errors } = client(session, { fetch: rec.fetch });
  const sent = await within(c.send('chat', { text: 'persistent' }), 10_000, 'the retried send');
  assert.equal(rec.sends.length, 3, 'two failures, then the attempt that worked');
  assert.equal(new Set(rec.sends.map((s) => s.seq)).size, 1, 'every attempt carries the same seq (the consumer dedupes)');
  assert.deepEqual(errors.map((e) => [e.name, e.operation, e.status]), [
    ['SqsRequestError', 'SendMessage', 0],
    ['SqsRequestError', 'SendMessage', 503],
  ]);
  const got = await upstream();
  assert.deepEqual(got.map((m) => m.MessageId), [sent.messageId]);
});

test('SQS refusing a message for good rejects its send with a SendError at once; the next message still goes', async () => {
  // an upstream queue that refuses bodies over 1 KiB: SQS's own permanent refusal
  const { session, upstream } = await setup({ MaximumMessageSize: '1024' });
  const rec = recordingFetch();
  const { client: c, errors } = client(session, { fetch: rec.fetch });
  const refused = c.send('chat', { text: 'x'.repeat(2000) });
  const err = await within(refused.then(() => null, (e) => e), 10_000, 'the refused send');
  assert.ok(err instanceof SendError, `a SendError, got ${err}`);
  assert.equal(err.code, 'SEND_FAILED');
  assert.equal(err.reason, 'too-large');
  assert.equal(err.awsCode, 'InvalidParameterValue');
  assert.equal(err.type, 'chat');
  assert.ok(err.cause instanceof SqsRequestError);
  assert.doesNotMatch(err.message, /xxxx/, 'the body is not in the error');
  assert.equal(rec.sends.length, 1, 'not retried');
  const ok = await within(c.send('chat', { text: 'short' }), 10_000, 'the next send');
  assert.deepEqual((await upstream()).map((m) => m.MessageId), [ok.messageId]);
  assert.deepEqual(errors, [], 'a refusal is the promise\'s to tell, not reported as a loop error');
});

test('a message over the 16 KiB upstream limit is refused before any request', async () => {
  const { session, upstream } = await setup();
  const rec = recordingFetch();
  const { client: c } = client(session, { fetch: rec.fetch });
  const err = await within(c.send('chat', { text: 'é'.repeat(MAX_UPSTREAM_BYTES / 2) }).then(() => null, (e) => e), 5000, 'send');
  assert.ok(err instanceof SendError);
  assert.equal(err.reason, 'too-large');
  assert.match(err.message, /over the upstream limit of 16384/);
  assert.equal(rec.sends.length, 0, 'no request: SQS would refuse it');
  assert.deepEqual(await upstream(), []);
});

test('without an upstreamUrl (an older stack) send rejects with reason "no-upstream"; bad arguments are TypeErrors', async () => {
  const { session } = await setup();
  delete session.upstreamUrl;
  const { client: c } = client(session);
  await assert.rejects(c.send('chat', {}), (e) => e instanceof SendError && e.reason === 'no-upstream' && /upstreamUrl/.test(e.message));
  await assert.rejects(c.send('Chat!', {}), TypeError);
  await assert.rejects(c.send('chat', undefined), TypeError);
  await assert.rejects(c.send('heartbeat', {}), /sent by the client itself/);
  await assert.rejects(c.send('read', { messageIds: ['a'] }), /markRead/);
  await assert.rejects(c.markRead([]), TypeError);
  await assert.rejects(c.markRead(['ok', 7]), TypeError);
});

test('markRead sends type "read" with the ids, duplicates dropped, at most 100 per message', async () => {
  const { session, upstream } = await setup();
  const { client: c } = client(session);
  const ids = Array.from({ length: 250 }, (_, i) => `m-${i}`);
  const sent = await c.markRead([...ids, 'm-0', 'm-1']);
  assert.equal(sent.length, 3);
  const got = await upstream();
  const bodies = got.map((m) => JSON.parse(m.Body)).sort((a, b) => a.seq - b.seq);
  assert.deepEqual(bodies.map((b) => b.type), ['read', 'read', 'read']);
  assert.deepEqual(bodies.map((b) => b.body.messageIds.length), [100, 100, 50]);
  assert.deepEqual(bodies.flatMap((b) => b.body.messageIds), ids);
});

test('only the leader tab heartbeats, at most once per interval, none while hidden, at once when visible again', async () => {
  const { session, upstream } = await setup();
  const tabs = [0, 1].map(() => {
    const page = fakePage();
    const rec = recordingFetch();
    const roles = [];
    const { client: c, errors } = client(session, { share: true, heartbeatSeconds: 1, page, fetch: rec.fetch });
    c.on('role', (r) => roles.push(r));
    return { page, rec, client: c, errors, roles };
  });
  try {
    tabs[0].client.start();
    await until(() => tabs[0].client.role === 'leader', 5000, 'the first tab to lead');
    tabs[1].client.start();
    await until(() => tabs[1].client.role === 'follower', 5000, 'the second tab to follow');
    const [leader, follower] = tabs;
    const beats = (tab) => tab.rec.sends.filter((s) => s.type === 'heartbeat');

    // visible: the leader's heartbeats, one per second; the follower sends none
    await new Promise((r) => setTimeout(r, 3500));
    const visible = beats(leader).length;
    assert.ok(visible >= 3 && visible <= 5, `3–5 heartbeats in ~3.5 s at 1 s, got ${visible}`);
    assert.equal(beats(follower).length, 0, 'the follower sends no heartbeat');

    // every tab hidden: none
    leader.page.set({ visible: false });
    follower.page.set({ visible: false });
    const hiddenAt = Date.now();
    await new Promise((r) => setTimeout(r, 2500));
    const whileHidden = [...beats(leader), ...beats(follower)].filter((s) => s.at > hiddenAt + 100);
    assert.deepEqual(whileHidden, [], 'no heartbeat while hidden');

    // the follower's tab becomes visible: the session is looked at, so the leader heartbeats at once
    const shownAt = Date.now();
    follower.page.set({ visible: true });
    await until(() => beats(leader).some((s) => s.at >= shownAt), 1000, 'a heartbeat on becoming visible');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(beats(follower).length, 0, 'still none from the follower');

    // hidden again past the interval, then the leader's own tab shows: a heartbeat at once
    follower.page.set({ visible: false });
    await new Promise((r) => setTimeout(r, 1500));
    const leaderShownAt = Date.now();
    leader.page.set({ visible: true });
    await until(() => beats(leader).some((s) => s.at >= leaderShownAt), 1000, 'a heartbeat on the leader becoming visible');
    assert.equal(beats(follower).length, 0, 'and none from the follower');

    // never two within an interval
    const times = beats(leader).map((s) => s.at);
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i] - times[i - 1] >= 1000 - JITTER_MS, `heartbeats ${times[i] - times[i - 1]} ms apart`);
    }
    // what reached the queue: the heartbeats, as the contract's envelope
    const got = (await upstream()).map((m) => JSON.parse(m.Body));
    assert.equal(got.length, times.length);
    for (const env of got) {
      assert.equal(env.type, 'heartbeat');
      assert.deepEqual(env.body, {});
      assert.equal(env.sessionId, session.sessionId);
    }
    assert.deepEqual([...leader.errors, ...follower.errors], []);
  } finally {
    await Promise.all(tabs.map((t) => t.client.stop()));
  }
});

test('a new leader keeps the pace: no extra heartbeat when the old leader leaves', async () => {
  const { session } = await setup();
  const tabs = [0, 1].map(() => {
    const rec = recordingFetch();
    const { client: c } = client(session, { share: true, heartbeatSeconds: 2, page: fakePage(), fetch: rec.fetch });
    return { rec, client: c };
  });
  const all = () => tabs.flatMap((t) => t.rec.sends.filter((s) => s.type === 'heartbeat').map((s) => s.at)).sort((a, b) => a - b);
  try {
    tabs[0].client.start();
    await until(() => tabs[0].client.role === 'leader', 5000, 'the first tab to lead');
    tabs[1].client.start();
    await until(() => tabs[1].client.role === 'follower', 5000, 'the second tab to follow');
    await until(() => all().length >= 1, 3000, 'a first heartbeat');
    await tabs[0].client.stop(); // hands over at once
    await until(() => tabs[1].client.role === 'leader', 5000, 'the second tab to lead');
    await new Promise((r) => setTimeout(r, 3000));
    const times = all();
    assert.ok(tabs[1].rec.sends.some((s) => s.type === 'heartbeat'), 'the new leader heartbeats');
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i] - times[i - 1] >= 2000 - JITTER_MS, `heartbeats ${times[i] - times[i - 1]} ms apart across the handover`);
    }
  } finally {
    await Promise.all(tabs.map((t) => t.client.stop()));
  }
});

test('a follower tab sends for itself (no detour through the leader), with its own credentials', async () => {
  const { session, upstream } = await setup();
  const tabs = [0, 1].map(() => {
    const rec = recordingFetch();
    const { client: c } = client(session, { share: true, page: fakePage(), fetch: rec.fetch });
    return { rec, client: c };
  });
  try {
    tabs[0].client.start();
    await until(() => tabs[0].client.role === 'leader', 5000, 'the first tab to lead');
    tabs[1].client.start();
    await until(() => tabs[1].client.role === 'follower', 5000, 'the second tab to follow');
    const sent = await within(tabs[1].client.send('chat', { text: 'from the follower' }), 10_000, 'the follower\'s send');
    assert.deepEqual(tabs[1].rec.sends.map((s) => s.type), ['chat'], 'the follower made the SendMessage');
    assert.deepEqual(tabs[0].rec.sends, [], 'the leader sent nothing for it');
    const got = await upstream();
    assert.deepEqual(got.map((m) => m.MessageId), [sent.messageId]);
  } finally {
    await Promise.all(tabs.map((t) => t.client.stop()));
  }
});

test('an expired token on send renews first and sends again; without renew it is "not-allowed"', async () => {
  const { session, upstream } = await setup();
  const expired = () => Response.json({ __type: 'com.amazonaws.sqs#ExpiredToken', message: 'The security token included in the request is expired' }, { status: 403 });
  const rec = recordingFetch();
  rec.failNext.push(expired);
  let renewals = 0;
  const { client: c } = client(session, {
    fetch: rec.fetch,
    renew: async () => {
      renewals += 1;
      return { accessKey: 'test', secretKey: 'test', sessionToken: 'renewed-token' };
    },
  });
  const sent = await within(c.send('chat', { text: 'after a renew' }), 10_000, 'the send after renewing');
  assert.equal(renewals, 1, 'renewed once');
  assert.equal(rec.sends.length, 2);
  assert.equal(c.session.sessionToken, 'renewed-token');
  assert.deepEqual((await upstream()).map((m) => m.MessageId), [sent.messageId]);

  const denied = recordingFetch();
  denied.failNext.push(expired);
  const { client: noRenew } = client(session, { fetch: denied.fetch });
  const err = await within(noRenew.send('chat', {}).then(() => null, (e) => e), 10_000, 'the send without renew');
  assert.ok(err instanceof SendError);
  assert.equal(err.reason, 'not-allowed');
  assert.equal(denied.sends.length, 1, 'not retried: nothing would change');

  const forbidden = recordingFetch();
  forbidden.failNext.push(() => Response.json({ __type: 'com.amazonaws.sqs#AccessDenied', message: 'not authorized' }, { status: 403 }));
  const { client: c3 } = client(session, { fetch: forbidden.fetch });
  const err3 = await within(c3.send('chat', {}).then(() => null, (e) => e), 10_000, 'the denied send');
  assert.equal(err3.reason, 'not-allowed');
  assert.equal(err3.awsCode, 'AccessDenied');
  assert.equal(forbidden.sends.length, 1);
});

test('heartbeats that cannot go before the next is due are dropped, not piled up for later', async () => {
  const { session, upstream } = await setup();
  const rec = recordingFetch();
  const failUntil = Date.now() + 3200;
  const realFetch = rec.fetch;
  // SQS answers 503 to every SendMessage for 3.2 s: four heartbeats fall due meanwhile
  const fetchFn = async (url, init) => {
    const target = new Headers(init.headers).get('x-amz-target');
    if (target === 'AmazonSQS.SendMessage' && Date.now() < failUntil) {
      rec.sends.push({ at: Date.now(), type: 'failed', seq: JSON.parse(JSON.parse(init.body).MessageBody).seq });
      return Response.json({ __type: 'com.amazonaws.sqs#ServiceUnavailable', message: 'later' }, { status: 503 });
    }
    return realFetch(url, init);
  };
  const { client: c } = client(session, { heartbeatSeconds: 1, page: fakePage(), fetch: fetchFn, backoffCapMs: 200 });
  c.start();
  try {
    await new Promise((r) => setTimeout(r, 3200 + 700));
    const delivered = (await upstream()).map((m) => JSON.parse(m.Body)).filter((e) => e.type === 'heartbeat');
    const attempted = new Set(rec.sends.filter((s) => s.type === 'failed').map((s) => s.seq));
    assert.ok(delivered.length >= 1 && delivered.length <= 2, `${delivered.length} heartbeats delivered in the first 0.7 s after SQS recovered: the current one, not the backlog`);
    assert.ok(attempted.size >= 3, `${attempted.size} heartbeats tried while SQS failed: each dropped when the next fell due`);
  } finally {
    await c.stop();
  }
});

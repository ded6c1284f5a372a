import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SqsPushClient,
  HandlerError,
  MacMismatchError,
  MissingMacError,
  MalformedBodyError,
  RenewError,
  SqsRequestError,
  DeleteError,
} from '../src/index.js';
import { FakeSqs, encrypt, session, until, macOf } from './helpers.mjs';

function setup(opts = {}, sqsOpts) {
  const sqs = new FakeSqs(sqsOpts);
  const s = opts.session || session();
  const got = [];
  const errors = [];
  const states = [];
  const client = new SqsPushClient({
    session: s,
    onMessage: (m) => got.push(m),
    onError: (e) => errors.push(e),
    onState: (st) => states.push(st),
    fetch: sqs.fetch,
    random: () => 0,
    ...opts,
  });
  const send = (obj, { mac = true } = {}) => {
    const enc = encrypt(JSON.stringify(obj), s.aesKey);
    return sqs.send(enc.body, mac === true ? enc.mac : mac === false ? undefined : mac);
  };
  return { sqs, s, got, errors, states, client, send };
}

test('receives, hands messages to onMessage in order, deletes them in one DeleteMessageBatch', async () => {
  const { sqs, got, client, send, states } = setup();
  const ids = [1, 2, 3].map((i) => send({ message: `Hello ${i}`, userId: 200, messageId: `m-${i}` }));
  client.start();
  await until(() => sqs.deleteBatches.length === 1, 3000, 'delete');
  await client.stop();
  assert.deepEqual(got.map((m) => m.messageId), ['m-1', 'm-2', 'm-3']);
  assert.deepEqual(got[0], { message: 'Hello 1', userId: 200, messageId: 'm-1' });
  assert.deepEqual(sqs.deleteBatches, [ids]);
  assert.equal(sqs.remaining, 0);
  assert.deepEqual(states, ['connecting', 'connected', 'stopped']);
  assert.equal(client.state, 'stopped');
});

test('requests: POST to the endpoint root, JSON protocol, SigV4 for sqs in the session region', async () => {
  const { sqs, client, s } = setup({ waitTimeSeconds: 7 });
  client.start();
  await until(() => sqs.calls.length >= 2);
  await client.stop();
  const c = sqs.calls[1];
  assert.equal(c.url, 'http://127.0.0.1:4566/');
  assert.equal(c.headers.get('content-type'), 'application/x-amz-json-1.0');
  assert.equal(c.headers.get('x-amz-target'), 'AmazonSQS.ReceiveMessage');
  assert.equal(c.headers.get('x-amz-security-token'), s.sessionToken);
  assert.match(c.headers.get('authorization'), /^AWS4-HMAC-SHA256 Credential=AKIDFIRST\/\d{8}\/us-east-1\/sqs\/aws4_request/);
  assert.deepEqual(c.body, {
    QueueUrl: s.sqsUrl,
    MaxNumberOfMessages: 10,
    WaitTimeSeconds: 7,
    MessageAttributeNames: ['All'],
  });
});

test('the first poll after start() and after an error does not wait; the others long-poll', async () => {
  const { sqs, client, states } = setup({ waitTimeSeconds: 20 });
  sqs.beforeReceive = () => {
    if (sqs.receives().length === 3) sqs.failNext.push({ status: 500, body: { __type: 'InternalFailure' } });
  };
  client.start();
  await until(() => sqs.receives().length >= 5, 3000, 'polls');
  await client.stop();
  // 1 connect, 2 long, 3 fails, 4 reconnect, 5 long
  assert.deepEqual(sqs.receives().slice(0, 5).map((c) => c.body.WaitTimeSeconds), [0, 20, 20, 0, 20]);
  assert.deepEqual(states, ['connecting', 'connected', 'reconnecting', 'connected', 'stopped']);
});

test('region comes from an sqs.<region>.amazonaws.com url when the session has none', async () => {
  const s = session({ sqsUrl: 'https://sqs.eu-west-2.amazonaws.com/123456789012/sqs-push-prod-x', region: undefined });
  const { sqs, client } = setup({ session: s });
  client.start();
  await until(() => sqs.calls.length >= 1);
  await client.stop();
  assert.equal(sqs.calls[0].url, 'https://sqs.eu-west-2.amazonaws.com/');
  assert.match(sqs.calls[0].headers.get('authorization'), /\/eu-west-2\/sqs\/aws4_request/);
});

test('the same messageId twice: onMessage once, both deleted', async () => {
  const { sqs, got, client, send } = setup();
  const a = send({ message: 'one', messageId: 'dup' });
  const b = send({ message: 'one again', messageId: 'dup' });
  client.start();
  await until(() => sqs.remaining === 0 && sqs.deleteBatches.length > 0, 3000, 'deletes');
  // and again in a later batch
  const c = send({ message: 'one more time', messageId: 'dup' });
  await until(() => sqs.deleteBatches.length === 2, 3000, 'second delete');
  await client.stop();
  assert.equal(got.length, 1);
  assert.equal(got[0].message, 'one');
  assert.deepEqual(sqs.deleteBatches, [[a, b], [c]]);
  assert.equal(sqs.remaining, 0);
});

test('the dedupe window is bounded', async () => {
  const { sqs, got, client, send } = setup({ dedupeWindow: 2 });
  for (const id of ['a', 'b', 'c', 'a', 'c']) send({ messageId: id });
  client.start();
  await until(() => sqs.remaining === 0, 3000, 'all deleted');
  await client.stop();
  // "a" fell out of the 2-id window when "c" came in; "c" is still remembered
  assert.deepEqual(got.map((m) => m.messageId), ['a', 'b', 'c', 'a']);
});

test('a handler that throws: reported, not deleted; the others are deleted in one batch', async () => {
  const { sqs, got, errors, client, send } = setup({
    onMessage: (m) => {
      if (m.messageId === 'bad') throw new Error('boom');
      got.push(m);
    },
  });
  const ok1 = send({ messageId: 'ok1' });
  const bad = send({ messageId: 'bad' });
  const ok2 = send({ messageId: 'ok2' });
  client.start();
  await until(() => sqs.deleteBatches.length === 1, 3000, 'delete');
  await client.stop();
  assert.deepEqual(sqs.deleteBatches, [[ok1, ok2]]);
  assert.equal(sqs.inflight.size, 1);
  assert.equal(errors.length, 1);
  const e = errors[0];
  assert.ok(e instanceof HandlerError);
  assert.equal(e.code, 'HANDLER_FAILED');
  assert.equal(e.sqsMessageId, bad);
  assert.equal(e.messageId, 'bad');
  assert.equal(e.cause.message, 'boom');
  assert.deepEqual(got.map((m) => m.messageId), ['ok1', 'ok2']);
});

test('a failed message comes back and is delivered then (not treated as a duplicate)', async () => {
  let fail = true;
  const { sqs, got, client, send } = setup({
    onMessage: async (m) => {
      if (fail) {
        fail = false;
        throw new Error('first time');
      }
      got.push(m);
    },
  });
  send({ messageId: 'retry-me' });
  client.start();
  await until(() => sqs.inflight.size === 1 && sqs.receives().length >= 2, 3000, 'first attempt');
  sqs.redeliverAll(); // visibility timeout elapsed
  await until(() => sqs.remaining === 0, 3000, 'deleted');
  await client.stop();
  assert.deepEqual(got.map((m) => m.messageId), ['retry-me']);
});

test('missing mac (required by default), bad mac, bad body: reported with the SQS MessageId, deleted, not delivered', async () => {
  const { sqs, got, errors, client, send, s } = setup();
  const missing = send({ messageId: 'x1' }, { mac: false });
  const bad = send({ messageId: 'x2' }, { mac: macOf('something else', s.aesKey) });
  const malformed = sqs.send('not-a-body', macOf('not-a-body', s.aesKey));
  const good = send({ messageId: 'x3' });
  client.start();
  await until(() => sqs.deleteBatches.length === 1, 3000, 'delete');
  await client.stop();
  assert.deepEqual(got.map((m) => m.messageId), ['x3']);
  assert.deepEqual(sqs.deleteBatches, [[missing, bad, malformed, good]]);
  assert.deepEqual(errors.map((e) => e.constructor), [MissingMacError, MacMismatchError, MalformedBodyError]);
  assert.deepEqual(errors.map((e) => e.sqsMessageId), [missing, bad, malformed]);
  const bodies = sqs.sent.map((m) => m.Body);
  assert.equal(bodies.length, 4);
  for (const e of errors) {
    assert.ok(e.message.includes(e.sqsMessageId), e.message);
    assert.ok(!e.message.includes(s.aesKey));
    for (const b of [...bodies, 'not-a-body']) assert.ok(!e.message.includes(b), 'no body in the message');
  }
});

test('requireMac: false accepts a missing mac but still rejects a bad one', async () => {
  const { sqs, got, errors, client, send, s } = setup({ requireMac: false });
  send({ messageId: 'nomac' }, { mac: false });
  const bad = send({ messageId: 'badmac' }, { mac: macOf('x', s.aesKey) });
  client.start();
  await until(() => sqs.remaining === 0, 3000, 'deleted');
  await client.stop();
  assert.deepEqual(got.map((m) => m.messageId), ['nomac']);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof MacMismatchError);
  assert.equal(errors[0].sqsMessageId, bad);
});

test('_sqs_only and _type messages are handed to onMessage like any other', async () => {
  const { sqs, got, client, send } = setup();
  send({ _sqs_only: 1, _type: 'ping', messageId: 'p1' });
  client.start();
  await until(() => sqs.remaining === 0);
  await client.stop();
  assert.deepEqual(got, [{ _sqs_only: 1, _type: 'ping', messageId: 'p1' }]);
});

test('renew: called once when now passes expires - renewBeforeSeconds, not before; new credentials used next', async () => {
  let now = 1_000_000 * 1000; // ms
  const expires = 1_000_000 + 1000; // renew due at +700 s
  const s = session({ expires });
  const renewCalls = [];
  const { sqs, client } = setup({
    session: s,
    now: () => now,
    renew: async (current) => {
      renewCalls.push({ at: now, current });
      return { ...current, accessKey: 'AKIDSECOND', secretKey: 'secret-second', sessionToken: 'token-second', expires: expires + 3600 };
    },
  });
  const seen = [];
  sqs.beforeReceive = (call) => {
    seen.push({ at: now, key: call.accessKey, token: call.headers.get('x-amz-security-token') });
    now += 100_000; // each long poll takes 100 s of fake time
  };
  client.start();
  await until(() => sqs.receives().length >= 12, 5000, 'polls');
  await client.stop();
  assert.equal(renewCalls.length, 1);
  const at = renewCalls[0].at;
  assert.equal(at, (expires - 300) * 1000, 'renewed at the first poll at/after expires - 300 s');
  assert.equal(renewCalls[0].current.accessKey, 'AKIDFIRST');
  for (const r of seen) {
    if (r.at < at) assert.deepEqual([r.key, r.token], ['AKIDFIRST', 'token-first']);
    else assert.deepEqual([r.key, r.token], ['AKIDSECOND', 'token-second']);
  }
  assert.ok(seen.filter((r) => r.at < at).length === 7, 'polls before the renew used the old key');
  assert.equal(client.session.accessKey, 'AKIDSECOND');
});

test('renew may return only the credentials; the rest of the session is kept', async () => {
  const { sqs, client, s } = setup({
    session: session({ expires: 1 }),
    renew: async () => ({ accessKey: 'AKIDPART', secretKey: 'x', sessionToken: 't', expires: 4_000_000_000 }),
  });
  client.start();
  await until(() => sqs.calls.length >= 1);
  await client.stop();
  assert.equal(sqs.calls[0].accessKey, 'AKIDPART');
  assert.equal(client.session.aesKey, s.aesKey);
  assert.equal(client.session.sqsUrl, s.sqsUrl);
});

test('ExpiredToken from SQS triggers a renew even before the expiry time', async () => {
  let renewed = 0;
  const { sqs, client, errors, states } = setup({
    renew: async (cur) => {
      renewed += 1;
      return { ...cur, accessKey: 'AKIDNEW' };
    },
  });
  sqs.failNext.push({
    status: 400,
    body: { __type: 'com.amazon.coral.service#ExpiredTokenException', message: 'The security token included in the request is expired' },
  });
  client.start();
  await until(() => client.state === 'connected', 3000, 'connected');
  await client.stop();
  assert.equal(renewed, 1);
  assert.equal(sqs.calls[0].accessKey, 'AKIDFIRST');
  assert.equal(sqs.calls[1].accessKey, 'AKIDNEW');
  assert.ok(errors[0] instanceof SqsRequestError);
  assert.equal(errors[0].awsCode, 'ExpiredTokenException');
  assert.equal(errors[0].status, 400);
  assert.equal(errors[0].operation, 'ReceiveMessage');
  assert.equal(errors[0].isCredentialError, true);
  assert.deepEqual(states, ['connecting', 'reconnecting', 'connected', 'stopped']);
});

test('a failing renew is reported, backed off and retried; no poll with stale credentials meanwhile', async () => {
  let attempts = 0;
  const { sqs, client, errors, states } = setup({
    session: session({ expires: 1 }),
    renew: async (cur) => {
      attempts += 1;
      if (attempts < 3) throw new Error('backend down');
      return { ...cur, accessKey: 'AKIDOK', expires: 4_000_000_000 };
    },
  });
  client.start();
  await until(() => client.state === 'connected', 3000, 'connected');
  await client.stop();
  assert.equal(attempts, 3);
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e instanceof RenewError && e.cause.message === 'backend down'));
  assert.ok(sqs.calls.every((c) => c.accessKey === 'AKIDOK'));
  assert.deepEqual(states, ['connecting', 'reconnecting', 'connected', 'stopped']);
});

test('a renew returning something unusable is a RenewError', async () => {
  const { client, errors } = setup({
    session: session({ expires: 1 }),
    renew: async () => ({ accessKey: '' }),
  });
  client.start();
  await until(() => errors.length >= 1);
  await client.stop();
  assert.ok(errors[0] instanceof RenewError);
  assert.match(errors[0].message, /accessKey/);
});

test('backoff: full jitter, doubling from the base up to the cap, reset after a success', async () => {
  const { sqs, client } = setup({ random: () => 0.999, backoffBaseMs: 100, backoffCapMs: 300 });
  const fail = { status: 500, body: { __type: 'InternalFailure', message: 'x' } };
  sqs.failNext.push(fail, fail, fail, fail);
  const times = [];
  sqs.beforeReceive = () => {
    times.push(performance.now());
    if (times.length === 6) sqs.failNext.push(fail); // call 5 succeeded; call 6 fails again
  };
  client.start();
  await until(() => times.length >= 7, 5000, 'polls');
  await client.stop();
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // calls 1-4 fail: waits ~100, ~200, ~300 (cap), ~300; call 5 succeeds; call 6 fails: ~100 again
  const within = (g, lo, hi, what) => assert.ok(g >= lo && g < hi, `${what}: ${g.toFixed(1)} ms`);
  within(gaps[0], 95, 190, 'first retry');
  within(gaps[1], 195, 290, 'second retry');
  within(gaps[2], 295, 450, 'third retry (cap)');
  within(gaps[3], 295, 450, 'fourth retry (cap)');
  within(gaps[5], 95, 190, 'retry after a success');
});

test('network errors are reported as SqsRequestError with status 0, and the loop goes on', async () => {
  const sqs = new FakeSqs();
  let n = 0;
  const errors = [];
  const states = [];
  const client = new SqsPushClient({
    session: session(),
    onMessage: () => {},
    onError: (e) => errors.push(e),
    onState: (s) => states.push(s),
    random: () => 0,
    fetch: (url, init) => (++n <= 2 ? Promise.reject(new TypeError('fetch failed')) : sqs.fetch(url, init)),
  });
  client.start();
  await until(() => client.state === 'connected');
  await client.stop();
  assert.equal(errors.length, 2);
  assert.ok(errors[0] instanceof SqsRequestError);
  assert.equal(errors[0].status, 0);
  assert.match(errors[0].message, /ReceiveMessage failed: network error/);
  assert.deepEqual(states, ['connecting', 'reconnecting', 'connected', 'stopped']);
});

test('DeleteMessageBatch failures are reported as DeleteError with the SQS MessageIds', async () => {
  const { sqs, client, errors, send } = setup();
  const id = send({ messageId: 'd1' });
  sqs.inflight.delete = () => false; // every receipt handle is "invalid"
  client.start();
  await until(() => errors.length >= 1, 3000, 'delete error');
  await client.stop();
  assert.ok(errors[0] instanceof DeleteError);
  assert.equal(errors[0].code, 'DELETE_FAILED');
  assert.deepEqual(errors[0].failed.map((f) => [f.sqsMessageId, f.code]), [[id, 'ReceiptHandleIsInvalid']]);
});

test('stop() ends an in-flight long poll promptly', async () => {
  const { sqs, client, states } = setup({}, { emptyWaitMs: 60_000 });
  client.start();
  await until(() => sqs.calls.length === 1, 3000, 'poll in flight');
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  await client.stop();
  const took = performance.now() - t0;
  assert.ok(took < 200, `stop took ${took} ms`);
  assert.equal(client.state, 'stopped');
  assert.deepEqual(states, ['connecting', 'stopped']);
  assert.equal(sqs.calls.length, 1);
});

test('stop() during a backoff wait returns promptly; start() again resumes', async () => {
  const { sqs, client, got, send, states } = setup({ random: () => 0.999, backoffBaseMs: 60_000 });
  sqs.failNext.push({ status: 500, body: { __type: 'InternalFailure' } });
  client.start();
  await until(() => client.state === 'reconnecting');
  const t0 = performance.now();
  await client.stop();
  assert.ok(performance.now() - t0 < 200);
  send({ messageId: 'after-restart' });
  client.start();
  await until(() => got.length === 1);
  await client.stop();
  assert.deepEqual(states, ['connecting', 'reconnecting', 'stopped', 'connecting', 'connected', 'stopped']);
});

test('no more messages are handed out after stop(); the handled one is still deleted', async () => {
  let release;
  const gate = new Promise((r) => (release = r));
  const seen = [];
  const { sqs, client, send } = setup({
    onMessage: async (m) => {
      seen.push(m.messageId);
      await gate;
    },
  });
  const first = send({ messageId: 's1' });
  send({ messageId: 's2' });
  client.start();
  await until(() => seen.length === 1);
  const stopping = client.stop();
  release();
  await stopping;
  assert.deepEqual(seen, ['s1']);
  assert.deepEqual(sqs.deleteBatches, [[first]]);
  assert.equal(sqs.inflight.size, 1);
});

test('constructor validates its options', () => {
  const ok = { session: session(), onMessage: () => {} };
  assert.throws(() => new SqsPushClient({ ...ok, session: undefined }), TypeError);
  assert.throws(() => new SqsPushClient({ ...ok, onMessage: 'x' }), /onMessage/);
  assert.throws(() => new SqsPushClient({ ...ok, hidden: 'sleep' }), /hidden/);
  assert.throws(() => new SqsPushClient({ ...ok, hiddenPollSeconds: 0 }), /hiddenPollSeconds/);
  assert.throws(() => new SqsPushClient({ ...ok, share: 'yes' }), /share/);
  assert.throws(() => new SqsPushClient({ ...ok, page: { visible: () => true } }), /page\.online/);
  assert.throws(() => new SqsPushClient({ ...ok, onMessage: undefined }).start(), /nothing would receive/);
  assert.throws(() => new SqsPushClient(ok).on('mesage', () => {}), /unknown event "mesage"/);
  assert.throws(() => new SqsPushClient({ ...ok, session: session({ aesKey: 'nope' }) }), /aesKey/);
  assert.throws(() => new SqsPushClient({ ...ok, session: session({ sqsUrl: 'not a url' }) }), /sqsUrl/);
  assert.throws(() => new SqsPushClient({ ...ok, waitTimeSeconds: 21 }), /waitTimeSeconds/);
  assert.throws(() => new SqsPushClient({ ...ok, renew: 'x' }), /renew/);
  assert.equal(new SqsPushClient(ok).state, 'stopped');
});

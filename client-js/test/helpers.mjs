// Test helpers: a spec-following encryptor on node:crypto (independent of the
// package's WebCrypto code) and a tiny in-memory imitation of SQS behind fetch.

import { createCipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

export function randomKey() {
  return randomBytes(32).toString('base64');
}

export function counterBlock(counter) {
  let n = BigInt(counter);
  const block = Buffer.alloc(16);
  for (let i = 15; i >= 0; i--) {
    block[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return block;
}

export function macKeyOf(keyB64) {
  return Buffer.from(hkdfSync('sha256', Buffer.from(keyB64, 'base64'), Buffer.alloc(0), 'sqs-push/v1/mac', 32));
}

export function macOf(body, keyB64) {
  return createHmac('sha256', macKeyOf(keyB64)).update(body, 'utf8').digest('base64');
}

/** Encrypt per the wire format; returns { body, mac }. */
export function encrypt(plaintext, keyB64, counter) {
  const c = counter === undefined ? BigInt('0x' + randomBytes(16).toString('hex')) : BigInt(counter);
  const cipher = createCipheriv('aes-256-ctr', Buffer.from(keyB64, 'base64'), counterBlock(c));
  const ct = Buffer.concat([cipher.update(Buffer.from(plaintext, 'utf8')), cipher.final()]);
  const body = `${c.toString(10)}|${ct.toString('base64')}`;
  return { body, mac: macOf(body, keyB64) };
}

export function session(overrides = {}) {
  return {
    sqsUrl: 'http://127.0.0.1:4566/123456789012/sqs-push-local-test',
    sqsQueueName: 'sqs-push-local-test',
    aesKey: randomKey(),
    accessKey: 'AKIDFIRST',
    secretKey: 'secret-first',
    sessionToken: 'token-first',
    expires: 2_000_000_000,
    region: 'us-east-1',
    ...overrides,
  };
}

function abortError() {
  return new DOMException('The operation was aborted.', 'AbortError');
}

/**
 * In-memory SQS behind a fetch function. Messages received are hidden until
 * deleted (no visibility timeout: they stay hidden), unless `redeliver(id)`.
 * An empty receive waits until a message is sent, the request is aborted, or
 * `emptyWaitMs` (real time) passes.
 */
export class FakeSqs {
  constructor({ emptyWaitMs = 20 } = {}) {
    this.emptyWaitMs = emptyWaitMs;
    this.visible = [];
    this.sent = [];
    this.inflight = new Map();
    this.calls = []; // { op, body, accessKey, url, headers }
    this.deleteBatches = [];
    this.failNext = []; // queued { status, body } answers
    this.beforeReceive = null; // hook(call) called on each receive
    this.seq = 0;
    this.waiters = new Set();
    this.fetch = this.fetch.bind(this);
  }

  send(body, mac, attrs = {}) {
    const id = `sqs-${++this.seq}`;
    const MessageAttributes = { ...attrs };
    if (mac !== undefined) MessageAttributes.mac = { DataType: 'String', StringValue: mac };
    const m = { MessageId: id, Body: body, MessageAttributes };
    this.sent.push(m);
    this.visible.push(m);
    for (const w of this.waiters) w();
    return id;
  }

  get remaining() {
    return this.visible.length + this.inflight.size;
  }

  receives() {
    return this.calls.filter((c) => c.op === 'ReceiveMessage');
  }

  async fetch(url, init) {
    const headers = new Headers(init.headers);
    const op = headers.get('x-amz-target').replace('AmazonSQS.', '');
    const body = JSON.parse(init.body);
    const auth = headers.get('authorization') || '';
    const accessKey = /Credential=([^/]+)\//.exec(auth)?.[1];
    const call = { op, body, accessKey, url, headers };
    this.calls.push(call);
    if (init.signal?.aborted) throw abortError();
    if (op === 'ReceiveMessage' && this.beforeReceive) await this.beforeReceive(call);
    if (this.failNext.length) {
      const f = this.failNext.shift();
      return new Response(JSON.stringify(f.body), { status: f.status });
    }
    if (op === 'ReceiveMessage') {
      if (!this.visible.length) await this.#waitForMessage(init.signal);
      const out = this.visible.splice(0, body.MaxNumberOfMessages || 1).map((m) => {
        const ReceiptHandle = `rh-${m.MessageId}-${++this.seq}`;
        this.inflight.set(ReceiptHandle, m);
        return { ...m, ReceiptHandle };
      });
      return Response.json(out.length ? { Messages: out } : {});
    }
    if (op === 'DeleteMessageBatch') {
      this.deleteBatches.push(body.Entries.map((e) => this.inflight.get(e.ReceiptHandle)?.MessageId));
      const Successful = [];
      const Failed = [];
      for (const e of body.Entries) {
        if (this.inflight.delete(e.ReceiptHandle)) Successful.push({ Id: e.Id });
        else Failed.push({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', Message: 'invalid', SenderFault: true });
      }
      return Response.json({ Successful, Failed });
    }
    return Response.json({ __type: 'com.amazonaws.sqs#InvalidAction', message: 'nope' }, { status: 400 });
  }

  /** Put every in-flight (received, not deleted) message back, like a visibility timeout. */
  redeliverAll() {
    for (const [rh, m] of this.inflight) {
      this.inflight.delete(rh);
      this.visible.push(m);
    }
  }

  #waitForMessage(signal) {
    return new Promise((resolve, reject) => {
      const finish = (err) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const wake = () => finish();
      const onAbort = () => finish(abortError());
      const timer = setTimeout(wake, this.emptyWaitMs);
      this.waiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Resolve when `predicate()` is true (polled), or reject after `ms`. */
export async function until(predicate, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Whether every test must run: in CI (CI set, as CI services and this project's CI do) and under
 * scripts/test (SQS_PUSH_TEST_ALL=1). There a missing prerequisite is a failure, never a skip.
 */
export function everyTestMustRun(env = process.env) {
  const on = (value) => value !== undefined && value !== '' && value !== '0' && value !== 'false';
  return on(env.CI) || on(env.SQS_PUSH_TEST_ALL);
}

/**
 * The `skip` option of a test whose prerequisite may be missing (`missing`: why, or null when
 * it is there). A developer's plain `npm test` skips it and says why; where every test must run
 * the test runs, and fails on `requirePrerequisite(missing)` with that reason.
 */
export function skipUnlessRequired(missing, env = process.env) {
  if (!missing || everyTestMustRun(env)) return false;
  return `${missing}; skipping (CI and scripts/test fail instead)`;
}

/** The first line of such a test: fails with the reason when the prerequisite is missing. */
export function requirePrerequisite(missing) {
  if (missing) throw new Error(`prerequisite missing: ${missing}`);
}

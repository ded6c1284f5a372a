// The long-poll loop: receive → verify/decrypt → onMessage → DeleteMessageBatch,
// with dedupe by messageId, credential renewal and backoff with full jitter.

import { importKeys, open, parseMessage } from './crypto.js';
import {
  DeleteError,
  HandlerError,
  InvalidKeyError,
  MacMismatchError,
  MalformedBodyError,
  MissingMacError,
  RenewError,
  SqsPushError,
  SqsRequestError,
} from './errors.js';
import { endpointFor, regionFromUrl, sqsCall } from './sqs.js';

const MAX_MESSAGES = 10;
const DELETE_TIMEOUT_MS = 15000;
const POLL_GRACE_MS = 15000;

/** The last `size` message ids, first in first out. */
class RecentIds {
  constructor(size) {
    this.size = size;
    this.ring = [];
    this.pos = 0;
    this.set = new Set();
  }
  has(id) {
    return this.set.has(id);
  }
  add(id) {
    if (this.size <= 0 || this.set.has(id)) return;
    if (this.ring.length < this.size) {
      this.ring.push(id);
    } else {
      this.set.delete(this.ring[this.pos]);
      this.ring[this.pos] = id;
      this.pos = (this.pos + 1) % this.size;
    }
    this.set.add(id);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolve with `promise`, or with `undefined` as soon as `signal` aborts. */
function untilAborted(promise, signal) {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function checkSession(session, Err) {
  if (!session || typeof session !== 'object') throw new Err('session must be an object');
  for (const field of ['sqsUrl', 'aesKey', 'accessKey', 'secretKey']) {
    if (typeof session[field] !== 'string' || session[field] === '') {
      throw new Err(`session.${field} must be a non-empty string`);
    }
  }
  try {
    new URL(session.sqsUrl);
  } catch {
    throw new Err('session.sqsUrl is not a URL');
  }
  if (session.expires !== undefined && session.expires !== null && !Number.isFinite(session.expires)) {
    throw new Err('session.expires must be epoch seconds');
  }
}

function checkKeyFormat(aesKey) {
  const ok = /^[A-Za-z0-9+/]{43}=$/.test(aesKey);
  if (!ok) throw new InvalidKeyError('session.aesKey must be standard base64 of exactly 32 bytes');
}

function intOption(value, name, min, max, fallback) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function isRejection(err) {
  return err instanceof MalformedBodyError || err instanceof MacMismatchError || err instanceof MissingMacError;
}

function defaultOnError(err) {
  // eslint-disable-next-line no-console
  console.warn('[sqs-push]', err);
}

export class SqsPushClient {
  #session;
  #renew;
  #onMessage;
  #onError;
  #onState;
  #requireMac;
  #wait;
  #renewBefore;
  #fetch;
  #now;
  #random;
  #region;
  #endpoint;
  #baseMs;
  #capMs;
  #recent;
  #keys = null;
  #keysFor = null;
  #needRenew = false;
  #state = 'stopped';
  #ctrl = null;
  #loop = null;

  constructor(options = {}) {
    const o = options;
    checkSession(o.session, TypeError);
    checkKeyFormat(o.session.aesKey);
    if (typeof o.onMessage !== 'function') throw new TypeError('onMessage must be a function');
    for (const name of ['renew', 'onError', 'onState', 'fetch', 'now', 'random']) {
      if (o[name] !== undefined && typeof o[name] !== 'function') {
        throw new TypeError(`${name} must be a function`);
      }
    }
    this.#session = { ...o.session };
    this.#renew = o.renew;
    this.#onMessage = o.onMessage;
    this.#onError = o.onError || defaultOnError;
    this.#onState = o.onState;
    this.#requireMac = o.requireMac !== false;
    this.#wait = intOption(o.waitTimeSeconds, 'waitTimeSeconds', 0, 20, 20);
    this.#renewBefore = intOption(o.renewBeforeSeconds, 'renewBeforeSeconds', 0, 86400, 300);
    this.#recent = new RecentIds(intOption(o.dedupeWindow, 'dedupeWindow', 0, 1e6, 1000));
    this.#baseMs = intOption(o.backoffBaseMs, 'backoffBaseMs', 0, 3600000, 500);
    this.#capMs = intOption(o.backoffCapMs, 'backoffCapMs', 0, 3600000, 30000);
    this.#fetch = o.fetch || ((input, init) => globalThis.fetch(input, init));
    this.#now = o.now || Date.now;
    this.#random = o.random || Math.random;
    this.#region = o.region;
    this.#endpoint = o.endpoint;
  }

  /** "stopped" | "connecting" | "connected" | "reconnecting" */
  get state() {
    return this.#state;
  }

  /** The session in use (after renewals, the merged fresh one). */
  get session() {
    return { ...this.#session };
  }

  /** Start the long-poll loop. No-op when already running. */
  start() {
    if (this.#ctrl && !this.#ctrl.signal.aborted) return;
    const previous = this.#loop;
    const ctrl = new AbortController();
    this.#ctrl = ctrl;
    this.#setState('connecting');
    const run = () => this.#run(ctrl.signal);
    this.#loop = previous ? previous.then(run) : run();
  }

  /**
   * Stop: abort the in-flight long poll (and any backoff wait) and resolve when
   * the loop has ended. A handler already running is awaited, its message
   * deleted if it succeeded; no further messages are handed to onMessage.
   */
  async stop() {
    if (!this.#ctrl) return;
    this.#ctrl.abort();
    const loop = this.#loop;
    await loop;
    if (this.#loop === loop) this.#loop = null;
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    if (this.#onState) {
      try {
        this.#onState(state);
      } catch {
        // a failing observer must not break the loop
      }
    }
  }

  #report(err) {
    try {
      this.#onError(err);
    } catch {
      // ignore
    }
  }

  #backoff(attempt) {
    const ceiling = Math.min(this.#capMs, this.#baseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.floor(this.#random() * ceiling);
  }

  async #run(signal) {
    let attempt = 0;
    try {
      while (!signal.aborted) {
        try {
          await this.#renewIfDue(signal);
          if (signal.aborted) break;
          const messages = await this.#receive(signal);
          this.#setState('connected');
          if (messages.length) await this.#handleBatch(messages, signal);
          attempt = 0;
        } catch (err) {
          if (signal.aborted) {
            // the aborted poll itself is not worth reporting; a failed final delete is
            if (err instanceof SqsPushError) this.#report(err);
            break;
          }
          if (err instanceof SqsRequestError && err.isCredentialError) this.#needRenew = true;
          this.#report(err);
          this.#setState('reconnecting');
          attempt += 1;
          await sleep(this.#backoff(attempt), signal);
        }
      }
    } finally {
      if (this.#ctrl === null || this.#ctrl.signal === signal) this.#setState('stopped');
    }
  }

  async #renewIfDue(signal) {
    const s = this.#session;
    const due =
      this.#needRenew ||
      (Number.isFinite(s.expires) && this.#now() >= (s.expires - this.#renewBefore) * 1000);
    if (!due || !this.#renew) return;
    let fresh;
    try {
      fresh = await untilAborted(Promise.resolve(this.#renew({ ...s }, { signal })), signal);
    } catch (err) {
      throw new RenewError('renew callback failed', { cause: err });
    }
    if (signal.aborted) return;
    if (!fresh || typeof fresh !== 'object') throw new RenewError('renew did not return a session object');
    const merged = { ...s, ...fresh };
    try {
      checkSession(merged, RenewError);
      checkKeyFormat(merged.aesKey);
    } catch (err) {
      throw err instanceof RenewError ? err : new RenewError('renew returned an invalid aesKey');
    }
    this.#session = merged;
    this.#needRenew = false;
  }

  #target() {
    const s = this.#session;
    return {
      endpoint: this.#endpoint || endpointFor(s.sqsUrl),
      region: s.region || regionFromUrl(s.sqsUrl) || this.#region || 'us-east-1',
      credentials: s,
      queueUrl: s.sqsUrl,
    };
  }

  async #receive(signal) {
    const t = this.#target();
    // The first poll after start() or an error does not wait: on an idle queue a long poll
    // would keep the state at connecting/reconnecting for up to 20 s, and a bad credential or
    // a missing queue should show at once. Then long polls.
    const wait = this.#state === 'connected' ? this.#wait : 0;
    const out = await sqsCall({
      fetch: this.#fetch,
      endpoint: t.endpoint,
      region: t.region,
      credentials: t.credentials,
      operation: 'ReceiveMessage',
      payload: {
        QueueUrl: t.queueUrl,
        MaxNumberOfMessages: MAX_MESSAGES,
        WaitTimeSeconds: wait,
        MessageAttributeNames: ['All'],
      },
      signal,
      timeoutMs: wait * 1000 + POLL_GRACE_MS,
    });
    return Array.isArray(out.Messages) ? out.Messages : [];
  }

  async #getKeys() {
    const aesKey = this.#session.aesKey;
    if (this.#keysFor !== aesKey) {
      this.#keys = await importKeys(aesKey);
      this.#keysFor = aesKey;
    }
    return this.#keys;
  }

  async #handleBatch(messages, signal) {
    const keys = await this.#getKeys();
    const done = [];
    for (const m of messages) {
      if (signal.aborted) break; // stopped: hand out nothing more
      const sqsId = m.MessageId;
      const attr = m.MessageAttributes && m.MessageAttributes.mac;
      const mac = attr ? attr.StringValue : undefined;
      let msg;
      try {
        msg = parseMessage(await open(m.Body, keys, mac, this.#requireMac));
      } catch (err) {
        if (!isRejection(err)) throw err;
        // Rejected (bad/missing MAC, malformed): report and delete it, since
        // it would fail the same way every time it came back.
        err.sqsMessageId = sqsId;
        err.message = `message ${sqsId} rejected and deleted: ${err.message}`;
        this.#report(err);
        done.push(m);
        continue;
      }
      const id = msg.messageId === undefined || msg.messageId === null ? null : String(msg.messageId);
      if (id !== null && this.#recent.has(id)) {
        done.push(m); // duplicate: delete, do not deliver again
        continue;
      }
      try {
        await this.#onMessage(msg);
      } catch (err) {
        this.#report(
          new HandlerError(
            `onMessage failed for message ${id === null ? '(no messageId)' : id} (SQS ${sqsId}); left in the queue`,
            { cause: err, sqsMessageId: sqsId, messageId: id === null ? undefined : id },
          ),
        );
        continue;
      }
      if (id !== null) this.#recent.add(id);
      done.push(m);
    }
    if (done.length) await this.#delete(done);
  }

  async #delete(messages) {
    const t = this.#target();
    const entries = [];
    const byId = new Map();
    messages.forEach((m, i) => {
      if (typeof m.ReceiptHandle !== 'string') return;
      entries.push({ Id: String(i), ReceiptHandle: m.ReceiptHandle });
      byId.set(String(i), m.MessageId);
    });
    if (!entries.length) return;
    // Not tied to stop(): messages already handled should still be deleted.
    const out = await sqsCall({
      fetch: this.#fetch,
      endpoint: t.endpoint,
      region: t.region,
      credentials: t.credentials,
      operation: 'DeleteMessageBatch',
      payload: { QueueUrl: t.queueUrl, Entries: entries },
      timeoutMs: DELETE_TIMEOUT_MS,
    });
    const failed = Array.isArray(out.Failed) ? out.Failed : [];
    if (failed.length) {
      this.#report(
        new DeleteError(`DeleteMessageBatch could not delete ${failed.length} message(s); they will be received again`, {
          failed: failed.map((f) => ({
            sqsMessageId: byId.get(f.Id),
            code: f.Code,
            message: f.Message,
            senderFault: f.SenderFault,
          })),
        }),
      );
    }
  }
}

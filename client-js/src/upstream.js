// Upstream: what a page sends to the server. Each message is an envelope (docs/wire-format.md,
// "Upstream") sent with SQS SendMessage to the session's `upstreamUrl`, signed with the session's
// own credentials. The outbox keeps messages in order, holds them while offline, retries
// transient failures with the client's backoff and settles each caller's promise once: with
// SQS's MessageId, or with a SendError when SQS refuses it for good.

import { SendError, SqsRequestError } from './errors.js';

/** The upstream queue's MaximumMessageSize: a larger body is refused by SQS, so it is refused here first. */
export const MAX_UPSTREAM_BYTES = 16 * 1024;
/** The contract's `type`: a lower-case name, e.g. "chat", "typing", "cart.add". */
export const TYPE_RE = /^[a-z][a-z0-9_.:-]{0,63}$/;
/** `read` takes 1–100 messageIds per message (the receipts path's batch). */
export const MAX_READ_IDS = 100;

const SEND_TIMEOUT_MS = 15000;
/**
 * seq: a random start per client instance (every tab, every page load), then +1 per message.
 * The consumer processes each (session, seq) once and needs neither order nor contiguity, so tabs
 * and reloads need no coordination: two instances collide only if their ranges overlap, about
 * n / 2^53 for n messages each. The start leaves room for 2^40 messages below 2^53.
 */
const SEQ_SPAN = 2 ** 53 - 2 ** 40;

function randomSeqStart() {
  const b = new Uint32Array(2);
  globalThis.crypto.getRandomValues(b);
  // 53 random bits (21 high + 32 low), reduced into [1, SEQ_SPAN]
  const n = (b[0] & 0x1fffff) * 2 ** 32 + b[1];
  return (n % SEQ_SPAN) + 1;
}

export class SeqSource {
  #next = randomSeqStart();
  next() {
    return this.#next++;
  }
}

const encoder = new TextEncoder();

/** The envelope's JSON text. `ts` is stamped at each attempt, so a message held offline is not stale when it goes. */
export function envelopeText({ sessionId, seq, ts, type, body }) {
  return JSON.stringify({ v: 1, sessionId, seq, ts, type, body });
}

export function byteLength(text) {
  return encoder.encode(text).length;
}

/** Throws a TypeError for a `type` the consumer would refuse or a body JSON cannot carry. */
export function checkMessage(type, body) {
  if (typeof type !== 'string' || !TYPE_RE.test(type)) {
    throw new TypeError('type must match ' + TYPE_RE.source + ' (e.g. "chat")');
  }
  // sqs-push's own types have their own doors: heartbeats are the leader tab's alone (one per
  // session, not one per tab), and read takes checked, split ids
  if (type === 'heartbeat') throw new TypeError('"heartbeat" is sent by the client itself (heartbeatSeconds)');
  if (type === 'read') throw new TypeError('use markRead(messageIds) to send "read"');
  let json;
  try {
    json = JSON.stringify(body);
  } catch (err) {
    throw new TypeError('body must be JSON-serialisable', { cause: err });
  }
  if (json === undefined) throw new TypeError('body must be a JSON value (not undefined or a function)');
}

/** `markRead`'s ids: 1 or more non-empty strings, duplicates dropped, split into messages of at most 100. */
export function readChunks(messageIds) {
  if (!Array.isArray(messageIds) || messageIds.length === 0) {
    throw new TypeError('messageIds must be a non-empty array of messageId strings');
  }
  for (const id of messageIds) {
    if (typeof id !== 'string' || id === '') throw new TypeError('each messageId must be a non-empty string');
  }
  const ids = [...new Set(messageIds)];
  const chunks = [];
  for (let i = 0; i < ids.length; i += MAX_READ_IDS) chunks.push(ids.slice(i, i + MAX_READ_IDS));
  return chunks;
}

const THROTTLED_RE = /Throttl|RequestThrottled|ServiceUnavailable|InternalError|InternalFailure|KmsThrottled|SlowDown/i;
const TOO_LARGE_RE = /shorter than|too long|too large|exceeds|MessageTooLong|BatchRequestTooLong/i;

/**
 * What to do about a failed SendMessage: "retry" (network, timeout, 5xx, throttling),
 * "renew" (expired or unrecognised credentials) or a permanent SendError `reason`.
 */
export function classify(err) {
  if (!(err instanceof SqsRequestError)) return 'retry';
  if (err.isCredentialError) return 'renew';
  const code = err.awsCode || '';
  if (err.status === 0 || err.status >= 500 || err.status === 429 || THROTTLED_RE.test(code)) return 'retry';
  if (err.isQueueGone) return 'no-upstream';
  if (/AccessDenied|NotAuthorized|AuthorizationError|Forbidden/i.test(code) || err.status === 403) return 'not-allowed';
  if (TOO_LARGE_RE.test(code) || TOO_LARGE_RE.test(err.message)) return 'too-large';
  if (err.status >= 400) return 'refused';
  return 'retry';
}

function abortError(signal) {
  return signal.reason instanceof Error ? signal.reason : new DOMException('The send was aborted.', 'AbortError');
}

/**
 * The queue of messages to send. One worker sends them one at a time, oldest first: a transient
 * failure of the head would fail the next ones the same way, and one at a time keeps a page's
 * messages in the order it sent them (SQS itself promises no order).
 */
export class Outbox {
  #items = [];
  #running = false;
  #waker = null;
  #seq = new SeqSource();
  #host;

  /**
   * `host`: { session() (the current session), call(payload, signal) (a signed SendMessage),
   * ready(signal) (renew credentials when due), needRenew() (after a credential error; false
   * when there is no renew), online(), subscribe(fn) (page changes; returns an unsubscribe),
   * now() (the skew-corrected clock), backoff(attempt),
   * report(err), ended() }
   */
  constructor(host) {
    this.#host = host;
  }

  /** Pending messages (queued or being sent). */
  get size() {
    return this.#items.length;
  }

  /**
   * Queue a message; resolves with { messageId, seq } once SQS has it. `expiresAt` (ms, the
   * host's clock): give up silently after it (a heartbeat that is late is useless).
   */
  push(type, body, { signal, expiresAt } = {}) {
    return new Promise((resolve, reject) => {
      const item = { type, body, seq: this.#seq.next(), resolve, reject, settled: false, expiresAt };
      const fail = (err) => this.#settle(item, null, err);
      if (signal) {
        if (signal.aborted) return reject(abortError(signal));
        const onAbort = () => fail(abortError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        item.signal = signal;
        item.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      const ended = this.#host.ended();
      if (ended) return fail(this.#endedError(item));
      const missing = this.#missing();
      if (missing) return fail(new SendError(missing, { reason: 'no-upstream', type, seq: item.seq }));
      this.#items.push(item);
      this.#drain();
    });
  }

  /** Something changed (online again, visible): retry at once rather than after the backoff. */
  wake() {
    if (this.#waker) this.#waker();
  }

  /** The session ended: reject everything still queued. */
  end() {
    for (const item of this.#items.splice(0)) this.#settle(item, null, this.#endedError(item));
    this.wake();
  }

  #endedError(item) {
    return new SendError(`not sent: the session ended (type ${item.type}, seq ${item.seq})`, {
      reason: 'ended',
      type: item.type,
      seq: item.seq,
    });
  }

  #missing() {
    const s = this.#host.session();
    if (typeof s.upstreamUrl !== 'string' || s.upstreamUrl === '') {
      return 'the session has no upstreamUrl: this sqs-push stack does not accept messages from the page';
    }
    try {
      new URL(s.upstreamUrl);
    } catch {
      return 'session.upstreamUrl is not a URL';
    }
    if (typeof s.sessionId !== 'string' || s.sessionId === '') return 'the session has no sessionId';
    return null;
  }

  #settle(item, value, err) {
    if (item.settled) return;
    item.settled = true;
    if (item.unlisten) item.unlisten();
    const i = this.#items.indexOf(item);
    if (i >= 0) this.#items.splice(i, 1);
    if (err) item.reject(err);
    else item.resolve(value);
    if (i === 0) this.wake(); // the head went (aborted): do not wait out its backoff
  }

  /** Wait `ms` (Infinity: until woken). */
  #pause(ms) {
    return new Promise((resolve) => {
      let timer = null;
      const done = () => {
        if (timer !== null) clearTimeout(timer);
        if (this.#waker === done) this.#waker = null;
        resolve();
      };
      if (Number.isFinite(ms)) timer = setTimeout(done, ms);
      this.#waker = done;
    });
  }

  async #drain() {
    if (this.#running) return;
    this.#running = true;
    let attempt = 0;
    try {
      while (this.#items.length) {
        const item = this.#items[0];
        if (item.expiresAt !== undefined && this.#host.now() > item.expiresAt) {
          this.#settle(item, null, null);
          attempt = 0;
          continue;
        }
        if (!this.#host.online()) {
          // offline: hold everything until the page says it is back (or a send is aborted)
          const unsubscribe = this.#host.subscribe(() => this.wake());
          try {
            if (!this.#host.online()) await this.#pause(Infinity);
          } finally {
            unsubscribe();
          }
          continue;
        }
        const ctrl = new AbortController();
        const onAbort = () => ctrl.abort();
        if (item.signal) item.signal.addEventListener('abort', onAbort, { once: true });
        try {
          await this.#host.ready(ctrl.signal);
          if (item.settled) continue;
          const s = this.#host.session();
          const text = envelopeText({
            sessionId: s.sessionId,
            seq: item.seq,
            ts: Math.round(this.#host.now()),
            type: item.type,
            body: item.body,
          });
          const size = byteLength(text);
          if (size > MAX_UPSTREAM_BYTES) {
            this.#settle(
              item,
              null,
              new SendError(`not sent: the message is ${size} bytes, over the upstream limit of ${MAX_UPSTREAM_BYTES} (type ${item.type})`, {
                reason: 'too-large',
                type: item.type,
                seq: item.seq,
              }),
            );
            continue;
          }
          const out = await this.#host.call({ QueueUrl: s.upstreamUrl, MessageBody: text }, ctrl.signal, SEND_TIMEOUT_MS);
          this.#settle(item, { messageId: out.MessageId, seq: item.seq }, null);
          attempt = 0;
        } catch (err) {
          if (item.settled) {
            attempt = 0;
            continue; // aborted by its caller: already rejected
          }
          if (err instanceof SqsRequestError && err.status === 0 && !this.#host.online()) continue; // went offline
          const what = classify(err);
          if (what === 'renew' && this.#host.needRenew()) {
            // new credentials may fix it: count it as a failure, renew before the next attempt
          } else if (what !== 'retry') {
            const reason = what === 'renew' ? 'not-allowed' : what;
            const code = err.awsCode ? ` ${err.awsCode}` : '';
            this.#settle(
              item,
              null,
              new SendError(`not sent: SQS refused the message (${reason}${code}; type ${item.type}, seq ${item.seq})`, {
                reason,
                type: item.type,
                seq: item.seq,
                awsCode: err.awsCode,
                status: err.status,
                cause: err,
              }),
            );
            attempt = 0;
            continue;
          }
          this.#host.report(err);
          attempt += 1;
          await this.#pause(this.#host.backoff(attempt));
        } finally {
          if (item.signal) item.signal.removeEventListener('abort', onAbort);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}

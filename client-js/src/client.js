// The client: the long-poll loop (receive → verify/decrypt → listeners → DeleteMessageBatch, with
// dedupe by messageId, credential renewal and backoff with full jitter), how often it polls
// (visible, hidden, offline), tab sharing (one leader polls for every tab of the session), the
// end of a session (its queue is gone), and the way back: send/markRead through the outbox
// (upstream.js) and the leader's heartbeat (presence.js).

import { importKeys, open, parseMessage } from './crypto.js';
import {
  DeleteError,
  HandlerError,
  InvalidKeyError,
  MacMismatchError,
  MalformedBodyError,
  MissingMacError,
  RenewError,
  SendError,
  SqsPushError,
  SqsRequestError,
} from './errors.js';
import { Listeners } from './events.js';
import { browserPage, checkPage } from './page.js';
import { DEFAULT_HEARTBEAT_SECONDS, Heartbeat, MAX_HEARTBEAT_SECONDS, presenceOf } from './presence.js';
import { endpointFor, regionFromUrl, sqsCall } from './sqs.js';
import { sharingSupport, TabGroup } from './tabs.js';
import { checkMessage, Outbox, readChunks } from './upstream.js';

const MAX_MESSAGES = 10;
const DELETE_TIMEOUT_MS = 15000;
const POLL_GRACE_MS = 15000;
/**
 * A hidden tab's poll waits at most this long: a long poll (unlike WaitTimeSeconds 0) asks every
 * SQS server, so messages waiting are not missed, yet it does not hold a connection for 20 s.
 */
const HIDDEN_WAIT_SECONDS = 1;
const DEFAULT_HIDDEN_POLL_SECONDS = 600;
/**
 * A tab that closes normally says goodbye; one that crashes (or is killed, or loses its process)
 * does not, and its last "visible" would keep the leader polling at the visible rate for good. So
 * the leader asks its followers for their visibility again every VISIBILITY_ROLL_CALL_MS, and a
 * follower's answer counts for VISIBILITY_STALE_MS: more than two roll calls, so one late answer
 * does not drop a live tab, and about a minute and a half after a crash the leader is back to the
 * hidden rate.
 */
const VISIBILITY_ROLL_CALL_MS = 30_000;
const VISIBILITY_STALE_MS = 75_000;

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

function isQueueGone(err) {
  return err instanceof SqsRequestError && err.isQueueGone;
}

export class SqsPushClient {
  #session;
  #renew;
  #onMessage;
  #onError;
  #onState;
  #onPresence;
  #heartbeatMs;
  #heartbeat = null; // this tab's heartbeat while it leads (or is solo) and the session has an upstream
  #lastBeat = -Infinity; // when the tab group last sent a heartbeat (this.#now()), as the leader posted it
  #outbox;
  #renewing = null; // the renew in flight: the poll loop and the outbox share it
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
  #newQueueRetries;
  #newQueueDelayMs;
  #queueSeen = false; // a receive has succeeded: the queue exists, so "does not exist" means gone
  #recent;
  #hidden;
  #hiddenPollMs;
  #share;
  #page;
  #listeners = new Listeners();
  #clock = { skewMs: 0 };
  #keys = null;
  #keysFor = null;
  #needRenew = false;
  #state = 'stopped';
  #role = null;
  #ended = null;
  #ctrl = null;
  #loop = null;
  #group = null;
  #unsubscribePage = null;
  #otherTabs = new Map(); // tab id → { visible, at }: what the other tabs of the group last said, and when
  #lastRollCall = -Infinity; // when the leader last asked its followers for their visibility (this.#now())
  #wakers = new Set();
  #pollCtrl = null; // aborts the ReceiveMessage in flight (going offline)

  constructor(options = {}) {
    const o = options;
    checkSession(o.session, TypeError);
    checkKeyFormat(o.session.aesKey);
    for (const name of ['onMessage', 'renew', 'onError', 'onState', 'onPresence', 'fetch', 'now', 'random']) {
      if (o[name] !== undefined && typeof o[name] !== 'function') {
        throw new TypeError(`${name} must be a function`);
      }
    }
    if (o.hidden !== undefined && o.hidden !== 'poll' && o.hidden !== 'pause') {
      throw new TypeError('hidden must be "poll" or "pause"');
    }
    if (o.share !== undefined && typeof o.share !== 'boolean') throw new TypeError('share must be true or false');
    this.#session = { ...o.session };
    this.#renew = o.renew;
    this.#onMessage = o.onMessage;
    this.#onError = o.onError;
    this.#onState = o.onState;
    this.#onPresence = o.onPresence;
    // 0 turns heartbeats off; below a second would be a busy loop, above 85 s the session would
    // flicker offline between heartbeats (online = a heartbeat younger than 90 s).
    const hb = o.heartbeatSeconds;
    if (hb !== undefined && hb !== 0) intOption(hb, 'heartbeatSeconds', 1, MAX_HEARTBEAT_SECONDS, 0);
    this.#heartbeatMs = (hb === undefined ? DEFAULT_HEARTBEAT_SECONDS : hb) * 1000;
    this.#requireMac = o.requireMac !== false;
    this.#wait = intOption(o.waitTimeSeconds, 'waitTimeSeconds', 0, 20, 20);
    this.#renewBefore = intOption(o.renewBeforeSeconds, 'renewBeforeSeconds', 0, 86400, 300);
    this.#recent = new RecentIds(intOption(o.dedupeWindow, 'dedupeWindow', 0, 1e6, 1000));
    this.#baseMs = intOption(o.backoffBaseMs, 'backoffBaseMs', 0, 3600000, 500);
    this.#capMs = intOption(o.backoffCapMs, 'backoffCapMs', 0, 3600000, 30000);
    // AWS: a new queue may not be usable for up to a second after CreateQueue.
    this.#newQueueRetries = intOption(o.newQueueRetries, 'newQueueRetries', 0, 20, 3);
    this.#newQueueDelayMs = intOption(o.newQueueDelayMs, 'newQueueDelayMs', 0, 60000, 1000);
    this.#hidden = o.hidden || 'poll';
    this.#hiddenPollMs =
      intOption(o.hiddenPollSeconds, 'hiddenPollSeconds', 1, 86400, DEFAULT_HIDDEN_POLL_SECONDS) * 1000;
    // Sharing is for pages: without a document (Node, a worker) each client polls for itself.
    this.#share = o.share === undefined ? Boolean(globalThis.document) && sharingSupport() !== null : o.share;
    if (this.#share && sharingSupport() === null) {
      throw new TypeError('share: true needs BroadcastChannel, which this environment lacks');
    }
    this.#page = o.page === undefined ? browserPage() : checkPage(o.page);
    this.#fetch = o.fetch || ((input, init) => globalThis.fetch(input, init));
    this.#now = o.now || Date.now;
    this.#random = o.random || Math.random;
    this.#region = o.region;
    this.#endpoint = o.endpoint;
    this.#outbox = new Outbox({
      session: () => this.#session,
      call: (payload, signal, timeoutMs) => this.#sendMessage(payload, signal, timeoutMs),
      ready: (signal) => this.#renewIfDue(signal),
      needRenew: () => {
        if (!this.#renew) return false;
        this.#needRenew = true;
        return true;
      },
      online: () => this.#page.online(),
      // the outbox listens while it waits for the network, started or not
      subscribe: (fn) => this.#page.subscribe(fn),
      // the server's clock as best known: SigV4 skew answers correct it (sqs.js)
      now: () => this.#now() + this.#clock.skewMs,
      backoff: (attempt) => this.#backoff(attempt),
      report: (err) => this.#report(err),
      ended: () => this.#ended !== null,
    });
  }

  /** "stopped" | "connecting" | "connected" | "reconnecting" | "paused" | "ended" */
  get state() {
    return this.#state;
  }

  /** "leader" (polls for the tabs of its session), "follower", "solo" (not shared), or null when stopped. */
  get role() {
    return this.#role;
  }

  /** The session in use (after renewals, the merged fresh one). */
  get session() {
    return { ...this.#session };
  }

  /**
   * Send `body` (any JSON value) as a message of `type` to the server (the session's upstream
   * queue). Resolves with { messageId (SQS's), seq } once SQS has it; held while offline and
   * retried on transient failures; rejects with a SendError when SQS refuses it for good (or
   * the session ends first), with a TypeError for a bad type or body. Works in every tab, led or
   * not, started or not. `signal` aborts it (it may already have reached SQS).
   */
  send(type, body, { signal } = {}) {
    try {
      checkMessage(type, body);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#outbox.push(type, body, { signal });
  }

  /**
   * Mark history messages read (type "read", {messageIds}); duplicates are dropped and more
   * than 100 ids go as several messages. Resolves with one { messageId, seq } per message sent.
   */
  markRead(messageIds, { signal } = {}) {
    let chunks;
    try {
      chunks = readChunks(messageIds);
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.all(chunks.map((ids) => this.#outbox.push('read', { messageIds: ids }, { signal })));
  }

  /**
   * Listen: "message" (every message), "channel:<name>" (messages whose `channel` field is
   * <name>), "presence" (join/leave on channels with presence), "state", "error", "ended",
   * "role". Returns the client.
   */
  on(event, fn) {
    this.#listeners.add(event, fn);
    return this;
  }

  /** Remove a listener added with on(). Returns the client. */
  off(event, fn) {
    this.#listeners.remove(event, fn);
    return this;
  }

  /** Start polling (or join the session's tab group). No-op while running or after the session ended. */
  start() {
    if (this.#ended) return;
    if (this.#ctrl && !this.#ctrl.signal.aborted) return;
    if (!this.#onMessage && !this.#listeners.hasMessageListeners) {
      throw new TypeError('nothing would receive the messages: pass onMessage or add a "message" or "channel:<name>" listener first');
    }
    const ctrl = new AbortController();
    this.#ctrl = ctrl;
    this.#setState('connecting');
    this.#unsubscribePage = this.#page.subscribe(() => this.#pageChanged());
    if (!this.#share) {
      this.#setRole('solo');
      this.#startHeartbeat(ctrl.signal);
      this.#startLoop(ctrl.signal);
      return;
    }
    this.#joinGroup();
    const win = globalThis.window;
    if (win && typeof win.addEventListener === 'function') {
      // A page leaving (closed, navigated, or put in the back/forward cache) hands the polling
      // on at once; one restored from that cache joins again.
      const onHide = () => this.#leaveGroup();
      const onShow = (event) => {
        if (event.persisted && !this.#group && this.#ctrl === ctrl && !ctrl.signal.aborted) this.#joinGroup();
      };
      win.addEventListener('pagehide', onHide);
      win.addEventListener('pageshow', onShow);
      ctrl.signal.addEventListener('abort', () => {
        win.removeEventListener('pagehide', onHide);
        win.removeEventListener('pageshow', onShow);
      });
    }
  }

  #joinGroup() {
    this.#group = new TabGroup({
      name: `sqs-push:${this.#session.sqsUrl}`,
      lead: (leading) => this.#lead(leading),
      follow: () => this.#follow(),
      receive: (data) => this.#fromTab(data),
      left: (tab) => this.#otherTabs.delete(tab),
    });
    this.#group.join();
  }

  #follow() {
    this.#setRole('follower');
    // tell the leader whether this tab is visible, and hear its state back
    this.#group.post({ t: 'vis', tab: this.#group.id, visible: this.#page.visible(), hello: true });
  }

  /**
   * Stop: abort the in-flight long poll (and any wait) and resolve when the loop has ended. A
   * handler already running is awaited, its message deleted if it succeeded; no further messages
   * are handed out. A leader tab hands the polling to another tab of the session.
   */
  async stop() {
    if (!this.#ctrl) return;
    this.#ctrl.abort();
    this.#stopHeartbeat();
    this.#leaveGroup();
    if (this.#unsubscribePage) {
      this.#unsubscribePage();
      this.#unsubscribePage = null;
    }
    const loop = this.#loop;
    await loop;
    if (this.#loop === loop) this.#loop = null;
    this.#setRole(null);
    if (!this.#ended) this.#setState('stopped');
  }

  #leaveGroup() {
    if (!this.#group) return;
    this.#group.leave();
    this.#group = null;
    this.#otherTabs.clear();
  }

  #startLoop(signal) {
    const previous = this.#loop;
    const run = () => this.#run(signal);
    this.#loop = previous ? previous.then(run) : run();
  }

  #emit(event, value) {
    for (const fn of this.#listeners.of(event)) {
      try {
        fn(value);
      } catch {
        // a failing observer must not break the loop
      }
    }
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    if (this.#role === 'leader' && this.#group) this.#group.post({ t: 'state', state });
    if (this.#onState) {
      try {
        this.#onState(state);
      } catch {
        // a failing observer must not break the loop
      }
    }
    this.#emit('state', state);
  }

  #setRole(role) {
    if (role === this.#role) return;
    this.#role = role;
    this.#emit('role', role);
  }

  #report(err) {
    const listeners = this.#listeners.of('error');
    if (this.#onError) {
      try {
        this.#onError(err);
      } catch {
        // ignore
      }
    } else if (!listeners.length) {
      defaultOnError(err);
    }
    this.#emit('error', err);
  }

  /** The session is over (its queue is gone, or renew said so): stop for good and say so. */
  #end(reason, cause) {
    if (this.#ended) return;
    this.#ended = { reason };
    if (this.#role === 'leader' && this.#group) this.#group.post({ t: 'ended', reason });
    if (this.#ctrl) this.#ctrl.abort();
    this.#stopHeartbeat();
    this.#outbox.end();
    this.#leaveGroup();
    if (this.#unsubscribePage) {
      this.#unsubscribePage();
      this.#unsubscribePage = null;
    }
    this.#setState('ended');
    const info = cause === undefined ? { reason } : { reason, cause };
    this.#emit('ended', info);
  }

  // --- tabs ---

  #lead(leading) {
    this.#setRole('leader');
    this.#otherTabs.clear();
    this.#rollCall();
    const ctrl = new AbortController();
    const stop = () => ctrl.abort();
    this.#ctrl.signal.addEventListener('abort', stop, { once: true });
    leading.addEventListener('abort', stop, { once: true });
    if (this.#state !== 'connecting') this.#setState('connecting');
    this.#group.post({ t: 'state', state: this.#state });
    this.#startHeartbeat(ctrl.signal);
    this.#startLoop(ctrl.signal);
  }

  // --- heartbeats (leader or solo only) ---

  /**
   * Heartbeats for as long as `signal` (this tab's leadership, or the solo run) lasts. The
   * session's presence is one heartbeat stream, so only the tab that polls sends them; "visible"
   * means some tab of the session is (#mode), and the pace carries over from the previous leader.
   */
  #startHeartbeat(signal) {
    this.#stopHeartbeat();
    if (this.#heartbeatMs === 0 || !this.#session.upstreamUrl || signal.aborted) return;
    const hb = new Heartbeat({
      intervalMs: this.#heartbeatMs,
      live: () => this.#mode() === 'live',
      online: () => this.#page.online(),
      now: this.#now,
      last: this.#lastBeat,
      beat: () => this.#beat(hb),
    });
    this.#heartbeat = hb;
    signal.addEventListener('abort', () => {
      if (this.#heartbeat === hb) this.#stopHeartbeat();
    }, { once: true });
    hb.start();
  }

  #stopHeartbeat() {
    if (!this.#heartbeat) return;
    this.#heartbeat.stop();
    this.#heartbeat = null;
  }

  #beat(hb) {
    this.#lastBeat = hb.last;
    if (this.#group && this.#role === 'leader') this.#group.post({ t: 'beat', at: hb.last });
    // A heartbeat still unsent when the next is due is useless: drop it then.
    const expiresAt = this.#now() + this.#clock.skewMs + this.#heartbeatMs;
    this.#outbox.push('heartbeat', {}, { expiresAt }).catch((err) => {
      if (err instanceof SendError && err.reason === 'ended') return;
      this.#report(err);
      // Refused for good (no upstream, not allowed): every later heartbeat would be too.
      if (err instanceof SendError && this.#heartbeat === hb) this.#stopHeartbeat();
    });
  }

  #fromTab(data) {
    if (!data || typeof data !== 'object' || !this.#group) return;
    const leader = this.#role === 'leader';
    switch (data.t) {
      case 'msg':
        if (!leader) this.#deliverFromLeader(data.message);
        return;
      case 'state':
        if (!leader && typeof data.state === 'string') this.#setState(data.state);
        return;
      case 'ended':
        this.#end(data.reason === 'session-gone' ? 'session-gone' : 'queue-gone');
        return;
      case 'leader':
        this.#group.post({ t: 'vis', tab: this.#group.id, visible: this.#page.visible() });
        return;
      case 'beat':
        if (!leader && Number.isFinite(data.at)) this.#lastBeat = data.at;
        return;
      case 'vis':
        if (leader) {
          this.#otherTabs.set(data.tab, { visible: data.visible === true, at: this.#now() });
          this.#interruptIfPaused();
          this.#wake();
          if (this.#heartbeat) this.#heartbeat.changed();
          if (data.hello) {
            this.#group.post({ t: 'state', state: this.#state });
            // a tab that joins late still learns the pace, should it lead next
            if (Number.isFinite(this.#lastBeat)) this.#group.post({ t: 'beat', at: this.#lastBeat });
          }
        }
        return;
      default:
    }
  }

  async #deliverFromLeader(msg) {
    if (!msg || typeof msg !== 'object') return;
    const id = msg.messageId === undefined || msg.messageId === null ? null : String(msg.messageId);
    if (id !== null) {
      if (this.#recent.has(id)) return;
      this.#recent.add(id);
    }
    const failed = await this.#dispatch(msg);
    if (failed !== undefined) {
      this.#report(
        new HandlerError(
          `a listener failed for message ${id === null ? '(no messageId)' : id} (from the leader tab; not delivered again here)`,
          { cause: failed, messageId: id === null ? undefined : id },
        ),
      );
    }
  }

  // --- visibility and network ---

  #pageChanged() {
    if (this.#group && this.#role === 'follower') {
      this.#group.post({ t: 'vis', tab: this.#group.id, visible: this.#page.visible() });
    }
    this.#interruptIfPaused();
    this.#wake();
    this.#outbox.wake();
    if (this.#heartbeat) this.#heartbeat.changed();
  }

  /**
   * Offline: drop the long poll in flight rather than wait for it to fail (its answer could not
   * arrive anyway). Hidden with "pause" lets it finish: dropping it would leave SQS holding a poll
   * that can still take a message, which then waits out the visibility timeout.
   */
  #interruptIfPaused() {
    if (this.#pollCtrl && this.#mode() === 'offline') this.#pollCtrl.abort();
  }

  /** "live" (some tab of the session is visible), "hidden" or "offline". */
  #mode() {
    if (!this.#page.online()) return 'offline';
    if (this.#page.visible()) return 'live';
    const now = this.#now();
    for (const tab of this.#otherTabs.values()) {
      // a tab that stopped answering roll calls (it crashed) no longer counts as visible
      if (tab.visible && now - tab.at < VISIBILITY_STALE_MS) return 'live';
    }
    return 'hidden';
  }

  /** The leader asks every follower for its visibility (they answer with a "vis"). */
  #rollCall() {
    this.#lastRollCall = this.#now();
    this.#group.post({ t: 'leader' });
  }

  #wake() {
    for (const w of this.#wakers) w();
  }

  /** Wait `ms` (Infinity: until woken), or until #wake() or `signal` aborts. */
  #pause(ms, signal) {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let timer = null;
      const done = () => {
        if (timer !== null) clearTimeout(timer);
        this.#wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      if (Number.isFinite(ms)) timer = setTimeout(done, ms);
      this.#wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #backoff(attempt) {
    const ceiling = Math.min(this.#capMs, this.#baseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.floor(this.#random() * ceiling);
  }

  async #run(signal) {
    let attempt = 0;
    let notVisible = 0; // "does not exist" answers before the queue was ever reached
    let lastPollAt = -Infinity; // when the last poll started (ms, this.#now())
    let drain = false; // the last poll came back full: poll again at once, even when hidden
    while (!signal.aborted) {
      if (this.#role === 'leader' && this.#group && this.#now() - this.#lastRollCall >= VISIBILITY_ROLL_CALL_MS) {
        this.#rollCall();
      }
      const mode = this.#mode();
      if (mode === 'offline' || (mode === 'hidden' && this.#hidden === 'pause')) {
        this.#setState('paused');
        await this.#pause(Infinity, signal);
        continue;
      }
      if (mode === 'hidden' && !drain) {
        const due = lastPollAt + this.#hiddenPollMs - this.#now();
        if (due > 0) {
          await this.#pause(due, signal);
          continue; // re-check: visible again, offline, or due now
        }
      }
      try {
        await this.#renewIfDue(signal);
        if (signal.aborted || this.#ended) break;
        lastPollAt = this.#now();
        const messages = await this.#receive(signal, mode === 'hidden');
        if (messages === null) continue; // interrupted: offline
        this.#queueSeen = true;
        this.#setState('connected');
        drain = messages.length >= MAX_MESSAGES;
        if (messages.length) await this.#handleBatch(messages, signal);
        attempt = 0;
      } catch (err) {
        if (isQueueGone(err) && !this.#queueSeen && notVisible < this.#newQueueRetries && !signal.aborted) {
          // A queue never reached yet may be too new to be visible: ask again a few times
          // (1 s, 2 s, 3 s by default) before taking it for gone.
          notVisible += 1;
          await sleep(this.#newQueueDelayMs * notVisible, signal);
          continue;
        }
        if (isQueueGone(err)) {
          this.#end('queue-gone', err);
          break;
        }
        if (signal.aborted) {
          // the aborted poll itself is not worth reporting; a failed final delete is
          if (err instanceof SqsPushError) this.#report(err);
          break;
        }
        if (err instanceof SqsRequestError && err.status === 0 && !this.#page.online()) {
          continue; // went offline mid-request: pause, no error, no backoff
        }
        if (err instanceof SqsRequestError && err.isCredentialError) this.#needRenew = true;
        this.#report(err);
        this.#setState('reconnecting');
        attempt += 1;
        await sleep(this.#backoff(attempt), signal);
      }
    }
  }

  /** Renew when due; one renew at a time, shared by the poll loop and the outbox. */
  #renewIfDue(signal) {
    if (!this.#renewing) {
      this.#renewing = this.#renewNow(signal).finally(() => {
        this.#renewing = null;
      });
    }
    return this.#renewing;
  }

  async #renewNow(signal) {
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
    if (fresh === null) {
      // renew says the session is gone (e.g. the backend's renew answered 404)
      this.#end('session-gone');
      return;
    }
    if (!fresh || typeof fresh !== 'object') throw new RenewError('renew did not return a session object (or null when the session is gone)');
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
      fetch: this.#fetch,
      endpoint: this.#endpoint || endpointFor(s.sqsUrl),
      region: s.region || regionFromUrl(s.sqsUrl) || this.#region || 'us-east-1',
      credentials: s,
      clock: this.#clock,
      now: this.#now,
    };
  }

  /** SendMessage to the upstream queue (its own endpoint and region: it need not share the session queue's). */
  #sendMessage(payload, signal, timeoutMs) {
    const url = payload.QueueUrl;
    const s = this.#session;
    return sqsCall({
      ...this.#target(),
      endpoint: this.#endpoint || endpointFor(url),
      region: s.region || regionFromUrl(url) || this.#region || 'us-east-1',
      operation: 'SendMessage',
      payload,
      signal,
      timeoutMs,
    });
  }

  async #receive(signal, hidden) {
    // The first poll after start(), a pause or an error does not wait: on an idle queue a long
    // poll would keep the state at connecting/reconnecting/paused for up to 20 s, and a bad
    // credential or a missing queue should show at once. Then long polls; a hidden tab's
    // occasional poll waits at most HIDDEN_WAIT_SECONDS.
    let wait = this.#state === 'connected' ? this.#wait : 0;
    if (hidden) wait = Math.min(wait, HIDDEN_WAIT_SECONDS);
    const poll = new AbortController();
    const onAbort = () => poll.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#pollCtrl = poll;
    let out;
    try {
      out = await sqsCall({
        ...this.#target(),
        operation: 'ReceiveMessage',
        payload: {
          QueueUrl: this.#session.sqsUrl,
          MaxNumberOfMessages: MAX_MESSAGES,
          WaitTimeSeconds: wait,
          MessageAttributeNames: ['All'],
        },
        signal: poll.signal,
        timeoutMs: wait * 1000 + POLL_GRACE_MS,
      });
    } catch (err) {
      // Interrupted (offline), not stopped. A message SQS hands to the abandoned poll comes back
      // after the visibility timeout.
      if (poll.signal.aborted && !signal.aborted) return null;
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.#pollCtrl === poll) this.#pollCtrl = null;
    }
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

  /**
   * Hand `msg` to onMessage, the "message" listeners and the matching "channel:<name>" ones, in
   * that order, each awaited. Resolves with the first failure (undefined when all succeeded).
   */
  async #dispatch(msg) {
    const fns = [];
    let arg = msg;
    const presence = presenceOf(msg, this.#session);
    if (presence) {
      // join/leave go to presence listeners only: a chat's message listener should not render them
      arg = presence;
      if (this.#onPresence) fns.push(this.#onPresence);
      fns.push(...this.#listeners.of('presence'));
    } else {
      if (this.#onMessage) fns.push(this.#onMessage);
      fns.push(...this.#listeners.of('message'));
      if (typeof msg.channel === 'string' && msg.channel !== '') {
        fns.push(...this.#listeners.of(`channel:${msg.channel}`));
      }
    }
    let failure;
    let failed = false;
    for (const fn of fns) {
      try {
        await fn(arg);
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
      }
    }
    return failed ? (failure === undefined ? new Error('listener threw undefined') : failure) : undefined;
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
        done.push(m); // duplicate (here or, as a follower, in another tab): delete, do not deliver again
        continue;
      }
      // Other tabs first: they keep it even if this tab's listener fails (it comes back, and
      // they drop it then as a duplicate).
      if (this.#group && this.#role === 'leader') this.#group.post({ t: 'msg', message: msg });
      const failed = await this.#dispatch(msg);
      if (failed !== undefined) {
        this.#report(
          new HandlerError(
            `a listener failed for message ${id === null ? '(no messageId)' : id} (SQS ${sqsId}); left in the queue`,
            { cause: failed, sqsMessageId: sqsId, messageId: id === null ? undefined : id },
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
      ...this.#target(),
      operation: 'DeleteMessageBatch',
      payload: { QueueUrl: this.#session.sqsUrl, Entries: entries },
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

// Presence, the client's half: the leader tab's heartbeat (a session is online while its last
// heartbeat is younger than 90 s, docs/http-api.md) and recognising the presence events a channel
// with presence delivers (join / leave), so they reach `presence` listeners, not message ones.

/** Heartbeats are due every this many seconds by default: under the server's 90 s online window with room for a slow send. */
export const DEFAULT_HEARTBEAT_SECONDS = 60;
/** The longest interval that still keeps a visible session online (90 s window, 5 s for delivery). */
export const MAX_HEARTBEAT_SECONDS = 85;

/**
 * When to send a heartbeat: never more often than once per `intervalMs` (counted from the last
 * one this tab group sent, `last`), only while `live()` (some tab of the session visible) and
 * `online()`, and at once when it becomes live again if the interval has passed. Each heartbeat
 * goes through `beat()`.
 */
export class Heartbeat {
  #intervalMs;
  #live;
  #online;
  #beat;
  #now;
  #timer = null;
  #running = false;
  /** When the last heartbeat was started (ms); shared by the leader so a new leader keeps the pace. */
  last;

  constructor({ intervalMs, live, online, beat, now, last = -Infinity }) {
    this.#intervalMs = intervalMs;
    this.#live = live;
    this.#online = online;
    this.#beat = beat;
    this.#now = now;
    this.last = last;
  }

  start() {
    if (this.#running) return;
    this.#running = true;
    this.changed();
  }

  stop() {
    this.#running = false;
    this.#clear();
  }

  /** Visibility or network changed: send now if due, else (re)arm the timer, or stand still while hidden/offline. */
  changed() {
    this.#clear();
    if (!this.#running || !this.#live() || !this.#online()) return;
    const due = this.last + this.#intervalMs - this.#now();
    if (due > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.changed();
      }, due);
      return;
    }
    const at = this.#now();
    this.last = at;
    this.#beat();
    this.changed(); // arms the next one
  }

  #clear() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * The presence event in a decrypted message, or null: `{"type": "presence", "presence": "join" |
 * "leave", "channel": …, "accountId", "userId", "sessionId", "lastSeen", "messageId"}`.
 * `self` says whether it is about this session (`own`: the client's session).
 */
export function presenceOf(msg, own) {
  if (!msg || msg.type !== 'presence') return null;
  if (msg.presence !== 'join' && msg.presence !== 'leave') return null;
  if (typeof msg.channel !== 'string' || msg.channel === '') return null;
  const event = {
    presence: msg.presence,
    channel: msg.channel,
    accountId: msg.accountId,
    userId: msg.userId,
    sessionId: msg.sessionId,
    lastSeen: msg.lastSeen,
    self: isOwn(msg, own),
  };
  if (msg.messageId !== undefined) event.messageId = msg.messageId;
  return event;
}

/** A session is its user's (userId, sessionId): the same sessionId may belong to another user. */
function isOwn(msg, own) {
  if (!own || own.sessionId === undefined || String(msg.sessionId) !== String(own.sessionId)) return false;
  return own.userId === undefined || msg.userId === undefined || String(msg.userId) === String(own.userId);
}

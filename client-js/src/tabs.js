// One poller per browser per session: the tabs that open the same session form a group, elect
// one leader and talk over a BroadcastChannel. The leader polls, deletes and renews and posts
// every message it hands out; the others only listen.
//
// Election: Web Locks when the browser has them (`navigator.locks`: the tab holding the lock
// leads; when it closes, the browser releases the lock and the next waiting tab gets it at once).
// Without Web Locks, a heartbeat over the same BroadcastChannel: the leader posts one every
// `heartbeatMs`; a tab that hears none for `timeoutMs` (or hears the leader say goodbye) claims,
// and of tabs claiming at once the smallest id wins.

const CLAIM_MS = 200; // how long a claim waits for a competing claim or a leader's heartbeat
const HELLO_MS = 300; // how long a new tab waits for a leader to answer before claiming

function randomId() {
  const b = new Uint8Array(8);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** What tab sharing can use here: "locks", "broadcast" (heartbeat election) or null (neither). */
export function sharingSupport(env = globalThis) {
  if (typeof env.BroadcastChannel !== 'function') return null;
  const locks = env.navigator && env.navigator.locks;
  return locks && typeof locks.request === 'function' ? 'locks' : 'broadcast';
}

/**
 * A tab's membership of its session's group.
 *
 *   const group = new TabGroup({ name, lead(signal), follow(), receive(data) });
 *   group.join(); … group.post(data); … group.leave();
 *
 * `lead(signal)` is called when this tab becomes the leader; `signal` aborts when it stops being
 * one (it left, or, with the heartbeat election, another leader won). `follow()` is called when
 * the tab is (again) a follower. `receive(data)` gets what other tabs `post`; `left(id)` hears
 * that the tab `id` left.
 */
export class TabGroup {
  #name;
  #lead;
  #follow;
  #receive;
  #left;
  #mode;
  #locks;
  #Channel;
  #heartbeatMs;
  #timeoutMs;
  #channel = null;
  #joined = null; // AbortController of the membership
  #leading = null; // AbortController of the current leadership
  #release = null; // ends the Web Lock callback
  #lastBeat = 0;
  #timers = new Set();
  #claiming = false;

  constructor({ name, lead, follow, receive, left = () => {}, env = globalThis, heartbeatMs = 1000, timeoutMs = 3000 }) {
    this.id = randomId();
    this.#name = name;
    this.#lead = lead;
    this.#follow = follow;
    this.#receive = receive;
    this.#left = left;
    this.#mode = sharingSupport(env);
    if (!this.#mode) throw new TypeError('tab sharing needs BroadcastChannel (set share: false)');
    this.#locks = this.#mode === 'locks' ? env.navigator.locks : null;
    this.#Channel = env.BroadcastChannel;
    this.#heartbeatMs = heartbeatMs;
    this.#timeoutMs = timeoutMs;
  }

  /** "locks" or "broadcast": how this group elects its leader. */
  get election() {
    return this.#mode;
  }

  get isLeader() {
    return this.#leading !== null;
  }

  join() {
    if (this.#joined) return;
    const joined = new AbortController();
    this.#joined = joined;
    this.#channel = new this.#Channel(this.#name);
    this.#channel.onmessage = (event) => this.#onData(event.data);
    this.#follow();
    if (this.#locks) {
      this.#locks
        .request(this.#name, { signal: joined.signal }, () => {
          if (joined.signal.aborted) return undefined;
          return new Promise((release) => {
            this.#release = release;
            this.#becomeLeader();
          });
        })
        .catch(() => {
          // aborted while waiting (leave()): nothing to do
        });
    } else {
      this.#lastBeat = 0;
      this.#rawPost({ t: 'hello', id: this.id });
      this.#after(HELLO_MS, () => this.#watch());
    }
  }

  /** Leave the group: give up leadership (another tab takes over) and stop listening. */
  leave() {
    if (!this.#joined) return;
    this.#joined.abort();
    this.#joined = null;
    const wasLeader = this.#leading !== null;
    this.#stepDown();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    try {
      this.#channel.postMessage({ t: 'bye', id: this.id, leader: wasLeader });
    } catch {
      // closed already
    }
    this.#channel.close();
    this.#channel = null;
  }

  /** Post `data` to the other tabs of the group. */
  post(data) {
    this.#rawPost({ t: 'data', id: this.id, data });
  }

  #rawPost(msg) {
    if (!this.#channel) return;
    try {
      this.#channel.postMessage(msg);
    } catch {
      // the channel was closed under us (page unloading)
    }
  }

  #becomeLeader() {
    if (this.#leading || !this.#joined) return;
    this.#leading = new AbortController();
    if (!this.#locks) this.#beat();
    this.#lead(this.#leading.signal);
  }

  #stepDown() {
    if (!this.#leading) return;
    const leading = this.#leading;
    this.#leading = null;
    leading.abort();
    if (this.#release) {
      this.#release();
      this.#release = null;
    }
  }

  #after(ms, fn) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#joined) fn();
    }, ms);
    this.#timers.add(t);
  }

  // --- heartbeat election (no Web Locks) ---

  #beat() {
    if (!this.#leading) return;
    this.#rawPost({ t: 'hb', id: this.id });
    this.#after(this.#heartbeatMs, () => this.#beat());
  }

  /** A follower's watchdog: claim when the leader has been silent for timeoutMs. */
  #watch() {
    if (this.#leading) return;
    const silent = Date.now() - this.#lastBeat;
    if (silent >= this.#timeoutMs || this.#lastBeat === 0) {
      this.#claim();
      return;
    }
    this.#after(Math.max(50, this.#timeoutMs - silent), () => this.#watch());
  }

  #claim() {
    if (this.#claiming || this.#leading) return;
    this.#claiming = true;
    let lost = false;
    this.#onClaimSeen = (otherId) => {
      if (otherId < this.id) lost = true;
    };
    this.#rawPost({ t: 'claim', id: this.id });
    const startedAt = Date.now();
    this.#after(CLAIM_MS, () => {
      this.#claiming = false;
      this.#onClaimSeen = null;
      if (!lost && this.#lastBeat < startedAt) this.#becomeLeader();
      else this.#after(this.#timeoutMs, () => this.#watch());
    });
  }

  #onClaimSeen = null;

  #onData(msg) {
    if (!msg || typeof msg !== 'object' || msg.id === this.id) return;
    switch (msg.t) {
      case 'data':
        this.#receive(msg.data);
        return;
      case 'hello':
        if (this.#leading && !this.#locks) this.#rawPost({ t: 'hb', id: this.id });
        return;
      case 'hb':
        if (this.#locks) return;
        if (this.#leading) {
          // two leaders (a partition healed, or claims crossed): the smaller id stays
          if (msg.id < this.id) {
            this.#stepDown();
            this.#lastBeat = Date.now();
            this.#follow();
            this.#after(this.#timeoutMs, () => this.#watch());
          }
          return;
        }
        this.#lastBeat = Date.now();
        return;
      case 'claim':
        if (this.#locks) return;
        if (this.#leading) {
          this.#rawPost({ t: 'hb', id: this.id }); // there is a leader: tell the claimant
          return;
        }
        if (this.#onClaimSeen) this.#onClaimSeen(msg.id);
        return;
      case 'bye':
        this.#left(msg.id);
        if (this.#locks || this.#leading || !msg.leader) return;
        // the leader left: claim soon (a little jitter keeps simultaneous claims rare)
        this.#lastBeat = 0;
        this.#after(Math.floor(Math.random() * 50), () => this.#claim());
        return;
      default:
    }
  }
}

// Listener registry behind `client.on(event, fn)` / `client.off(event, fn)`.

/** Event names: "message", "channel:<name>", "presence", "state", "error", "ended", "role". */
const EVENT_RE = /^(message|presence|state|error|ended|role|channel:.+)$/;

export class Listeners {
  #byEvent = new Map();

  add(event, fn) {
    if (typeof event !== 'string' || !EVENT_RE.test(event)) {
      throw new TypeError(
        `unknown event ${JSON.stringify(event)}: use "message", "channel:<name>", "presence", "state", "error", "ended" or "role"`,
      );
    }
    if (typeof fn !== 'function') throw new TypeError(`the listener for "${event}" must be a function`);
    let set = this.#byEvent.get(event);
    if (!set) this.#byEvent.set(event, (set = new Set()));
    set.add(fn);
  }

  remove(event, fn) {
    const set = this.#byEvent.get(event);
    if (set) set.delete(fn);
  }

  /** A snapshot of the listeners of `event` (adding or removing during a call does not disturb it). */
  of(event) {
    const set = this.#byEvent.get(event);
    return set ? [...set] : [];
  }

  /** True when any "message" or "channel:*" listener is registered. */
  get hasMessageListeners() {
    for (const [event, set] of this.#byEvent) {
      if (set.size && (event === 'message' || event.startsWith('channel:'))) return true;
    }
    return false;
  }
}

// What the page looks like from the client's side: visible or hidden, online or offline.
// In a browser these come from `document.visibilityState` and `navigator.onLine` and their
// events; elsewhere (Node, workers without a document) the page is always visible and online.

/**
 * The default page observer: `{ visible(), online(), subscribe(fn) → unsubscribe }`.
 * `fn` is called after any visibility or network change.
 */
export function browserPage() {
  const doc = globalThis.document;
  const nav = globalThis.navigator;
  const win = globalThis.window;
  return {
    visible: () => !doc || doc.visibilityState !== 'hidden',
    online: () => !nav || nav.onLine !== false,
    subscribe(fn) {
      if (doc) doc.addEventListener('visibilitychange', fn);
      if (win) {
        win.addEventListener('online', fn);
        win.addEventListener('offline', fn);
      }
      return () => {
        if (doc) doc.removeEventListener('visibilitychange', fn);
        if (win) {
          win.removeEventListener('online', fn);
          win.removeEventListener('offline', fn);
        }
      };
    },
  };
}

/** Check a caller-supplied page observer; throws a TypeError naming what is missing. */
export function checkPage(page) {
  for (const name of ['visible', 'online', 'subscribe']) {
    if (typeof page[name] !== 'function') throw new TypeError(`page.${name} must be a function`);
  }
  return page;
}

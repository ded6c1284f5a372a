// The demo page: creates a session through the local stack's unsigned demo routes, runs the
// client from the built bundle, and shows its states and the decrypted messages with their
// delivery latency. The send buttons post through the demo notify routes with a `sentAt` field
// (epoch ms); any message carrying `sentAt` gets its latency shown, whoever sent it.
//
// The chat box is the way back: `client.send('chat', …)` puts a line on the upstream queue with
// the session's own credentials; the consumer hands it to the local app queue, where the local
// stack's demo app (`sqs-push-local --demo-chat`) publishes it to the channel. Who is online:
// the channel's presence route once, then its join/leave events (`presence` listener).
// `?heartbeat=<seconds>` in the page's URL sets the client's heartbeatSeconds (tests use 1).

import { SqsPushClient } from '/local-demo/sqs-push-client.js';

/** The signed API's routes, unsigned, for this page only (see crates/local/src/demo.rs). */
const API = '/local-demo/api';
const MAX_ROWS = 100;

const $ = (id) => document.getElementById(id);
let client = null;
let current = null; // the session create returned (its keys stay in memory, never on screen)
let received = 0;
let chatChannel = null; // the channel this page chats on, once joined
const online = new Map(); // "userId/sessionId" → { userId, sessionId, self }
const heartbeatParam = new URLSearchParams(location.search).get('heartbeat');
const heartbeatSeconds = heartbeatParam === null ? undefined : Number(heartbeatParam);

$('sessionId').value = crypto.randomUUID();
updateSendLabels();

$('session-form').addEventListener('submit', (event) => {
  event.preventDefault();
  connect();
});
$('disconnect').addEventListener('click', () => disconnect());
$('channel-form').addEventListener('submit', (event) => {
  event.preventDefault();
  subscribe();
});
$('channel').addEventListener('input', updateSendLabels);
$('chat-join').addEventListener('click', () => joinChat());
$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendChat();
});
$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  send(event.submitter ? event.submitter.value : 'user');
});
for (const id of ['accountId', 'userId']) $(id).addEventListener('input', updateSendLabels);

async function demoApi(path, init = {}) {
  const res = await fetch(API + path, { ...init, headers: { 'x-sqs-push-demo': '1', ...init.headers } });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok || answer.success === false) throw new Error(answer.error || `HTTP ${res.status}`);
  return answer;
}

/**
 * Creates the session and starts the client. `beforeStart` runs between the two: the chat
 * subscribes there, so that the session is on the channel by its first heartbeat (the one that
 * announces its join).
 */
async function connect(beforeStart) {
  await disconnect();
  const ids = ['accountId', 'userId', 'sessionId'].map((id) => encodeURIComponent($(id).value.trim()));
  $('connect').disabled = true;
  try {
    const createPath = `/create/${ids.join('/')}`;
    const { session } = await demoApi(createPath);
    current = session;
    showSession(session);
    log(`session created for account ${session.accountId}, user ${session.userId}`);
    const created = new SqsPushClient({
      session,
      // Repeating create for a live session returns the same queue and key, with fresh
      // credentials once the old ones are close to expiry (docs/http-api.md).
      renew: async (_current, { signal }) => {
        const renewed = (await demoApi(createPath, { signal })).session;
        showSession(renewed);
        log('credentials renewed');
        return renewed;
      },
      onMessage: show,
      onPresence: showPresence,
      onError: (err) => log(`${err.name}: ${err.message}`, 'error'),
      onState: showState,
      ...(heartbeatSeconds === undefined ? {} : { heartbeatSeconds }),
    });
    if (beforeStart) await beforeStart();
    client = created;
    client.start();
    $('disconnect').disabled = false;
    $('send-session').disabled = false;
    $('subscribe').disabled = false;
    if (!session.upstreamUrl) log('this stack gives no upstreamUrl: the chat needs the upstream queue', 'error');
  } catch (err) {
    log(`create failed: ${err.message}`, 'error');
  } finally {
    $('connect').disabled = false;
  }
}

async function disconnect() {
  if (!client) return;
  const stopping = client;
  client = null;
  $('disconnect').disabled = true;
  $('send-session').disabled = true;
  $('subscribe').disabled = true;
  $('chat-send').disabled = true;
  chatChannel = null;
  online.clear();
  renderOnline();
  await stopping.stop();
}

/**
 * Joins the chat: subscribes this session to the channel with presence events (the backend's
 * call, unsigned here), then reads who is online now; join/leave events keep the list current.
 * Not connected yet: connects, subscribing before the client starts (its first heartbeat then
 * announces the join). Already connected: subscribes the running session.
 */
async function joinChat() {
  const channel = $('channel').value.trim();
  if (!client) {
    await connect(() => subscribeForChat(channel));
    if (client) await showWhoIsOnline(channel);
    return;
  }
  try {
    await subscribeForChat(channel);
  } catch {
    return; // said by subscribeForChat
  }
  await showWhoIsOnline(channel);
}

async function subscribeForChat(channel) {
  const ids = [current.accountId, current.userId, current.sessionId].map((id) => encodeURIComponent(String(id)));
  try {
    await demoApi(`/subscribe/${ids.join('/')}/${encodeURIComponent(channel)}?presence=true`);
    chatChannel = channel;
    $('chat-send').disabled = false;
    $('chat-heading').textContent = `Chat on ${channel}`;
    log(`joined the chat on ${channel}`);
  } catch (err) {
    $('chat-result').textContent = `Joining the chat failed: ${err.message}`;
    log(`chat join failed: ${err.message}`, 'error');
    throw err;
  }
}

/** Who is online on the channel now (the backend's presence route, unsigned here). */
async function showWhoIsOnline(channel) {
  try {
    const now = await demoApi(`/channels/${encodeURIComponent(channel)}/presence?limit=100`);
    for (const s of now.online || []) setOnline('join', { ...s, self: isSelf(s) });
    renderOnline();
  } catch (err) {
    log(`presence failed: ${err.message}`, 'error');
  }
}

async function sendChat() {
  if (!client || !chatChannel) return;
  const text = $('chat-text').value;
  if (!text.trim()) return;
  try {
    const { messageId } = await client.send('chat', { channel: chatChannel, text, sentAt: Date.now() });
    $('chat-text').value = '';
    $('chat-result').textContent = `Sent upstream (SQS message ${messageId}).`;
  } catch (err) {
    // a SendError says why (too-large, not-allowed, …); never the text itself
    $('chat-result').textContent = `Not sent: ${err.message}`;
    log(`chat send failed: ${err.name}: ${err.message}`, 'error');
  }
}

function isSelf(s) {
  return current !== null && String(s.sessionId) === String(current.sessionId) && String(s.userId) === String(current.userId);
}

function setOnline(kind, p) {
  const key = `${p.userId}/${p.sessionId}`;
  if (kind === 'join') online.set(key, { userId: p.userId, sessionId: p.sessionId, self: p.self });
  else online.delete(key);
}

function showPresence(p) {
  if (p.channel !== chatChannel) return;
  setOnline(p.presence, p);
  renderOnline();
  const who = p.self ? 'you' : `user ${p.userId}`;
  chatLine(null, `${who} ${p.presence === 'join' ? 'joined' : 'left'}`, 'presence');
  log(`presence: user ${p.userId} ${p.presence === 'join' ? 'joined' : 'left'} ${p.channel}`);
}

function renderOnline() {
  const list = $('online');
  list.replaceChildren(
    ...[...online.values()].map((s) => {
      const item = document.createElement('li');
      item.dataset.userId = String(s.userId);
      item.dataset.sessionId = String(s.sessionId);
      item.textContent = `user ${s.userId}${s.self ? ' (you)' : ''}`;
      item.title = `session ${s.sessionId}`;
      return item;
    }),
  );
  $('online-count').textContent = `(${online.size})`;
}

function chatLine(who, text, kind = 'line') {
  const item = document.createElement('li');
  item.className = kind;
  if (who !== null) {
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = `${who}:`;
    item.append(name);
  }
  item.append(document.createTextNode(who === null ? text : ` ${text}`)); // never innerHTML: lines are data
  const list = $('chat-log');
  list.append(item);
  while (list.children.length > MAX_ROWS) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

/** Subscribes this page's session to the channel (the backend's call, unsigned here). */
async function subscribe() {
  if (!current) return;
  const channel = $('channel').value.trim();
  const ids = [current.accountId, current.userId, current.sessionId].map((id) => encodeURIComponent(String(id)));
  try {
    await demoApi(`/subscribe/${ids.join('/')}/${encodeURIComponent(channel)}`);
    $('channel-result').textContent = `Subscribed to ${channel}.`;
    log(`subscribed to ${channel}`);
  } catch (err) {
    $('channel-result').textContent = `Subscribing failed: ${err.message}`;
    log(`subscribe failed: ${err.message}`, 'error');
  }
}

async function send(to) {
  const text = $('text').value;
  const accountId = encodeURIComponent($('accountId').value.trim());
  const userId = encodeURIComponent($('userId').value.trim());
  let path;
  if (to === 'session') {
    if (!current) return;
    path = `/notify/user/${current.userId}/session/${encodeURIComponent(current.sessionId)}`;
  } else if (to === 'account') {
    path = `/notify/account/${accountId}`;
  } else if (to === 'everyone') {
    path = '/notify';
  } else if (to === 'channel') {
    path = `/notify/channel/${encodeURIComponent($('channel').value.trim())}`;
  } else {
    path = `/notify/user/${userId}`;
  }
  try {
    const answer = await demoApi(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: text, sentAt: Date.now() }),
    });
    // Everyone is accepted for a segmented fan-out and answered with the plan, not the outcome.
    $('send-result').textContent =
      answer.segments !== undefined
        ? `Sent to ${to}: accepted in ${answer.segments} segment(s), ~${answer.estimatedSessions} session(s), message ${answer.messageId}.`
        : `Sent to ${to}: ${answer.sessionsMatched} session(s) matched, message ${answer.messageId}.`;
  } catch (err) {
    $('send-result').textContent = `Sending to ${to} failed: ${err.message}`;
    log(`notify failed: ${err.message}`, 'error');
  }
}

function show(msg) {
  if (msg.chat === true && msg.channel === chatChannel && typeof msg.message === 'string') {
    const self = current !== null && String(msg.fromSessionId) === String(current.sessionId) && String(msg.fromUserId) === String(current.userId);
    chatLine(self ? 'you' : `user ${msg.fromUserId}`, msg.message);
  }
  const at = Date.now();
  const sentAt = Number(msg.sentAt);
  const latency = msg.sentAt !== undefined && Number.isFinite(sentAt) ? `${Math.max(0, at - sentAt)} ms` : '—';
  const text = typeof msg.message === 'string' ? msg.message : JSON.stringify(msg);
  const row = document.createElement('tr');
  for (const value of [clock(at), targetOf(msg), text, latency, msg.messageId ?? '']) {
    const cell = document.createElement('td');
    cell.textContent = String(value); // never innerHTML: messages are data
    row.append(cell);
  }
  row.cells[3].className = 'num';
  row.cells[4].className = 'id';
  const body = $('messages').tBodies[0];
  body.prepend(row);
  while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
  received += 1;
  $('count').textContent = `(${received})`;
  $('no-messages').hidden = true;
}

/** Which kind of target a message was sent to, from the fields the service stamps on it. */
function targetOf(msg) {
  if (msg.channel !== undefined) return `channel ${msg.channel}`;
  if (msg.sessionId !== undefined) return 'session';
  if (msg.userId !== undefined) return `user ${msg.userId}`;
  if (msg.accountId !== undefined) return `account ${msg.accountId}`;
  return 'everyone';
}

function showState(state) {
  const out = $('state');
  out.textContent = state;
  out.dataset.state = state;
  log(`state: ${state}`);
}

function showSession(session) {
  $('info-queue').textContent = session.sqsQueueName || session.sqsUrl;
  $('info-expires').textContent = Number.isFinite(session.expires)
    ? new Date(session.expires * 1000).toLocaleString()
    : 'unknown';
  $('session-info').hidden = false;
}

function updateSendLabels() {
  $('send-user').textContent = `the user (${$('userId').value.trim()})`;
  $('send-account').textContent = `the account (${$('accountId').value.trim()})`;
  $('send-channel').textContent = `the channel (${$('channel').value.trim()})`;
}

function log(text, kind = 'info') {
  const item = document.createElement('li');
  item.className = kind;
  item.textContent = `${clock(Date.now())}  ${text}`;
  const list = $('log');
  list.prepend(item);
  while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
}

function clock(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

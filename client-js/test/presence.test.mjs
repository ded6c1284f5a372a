// Presence events (join/leave on a channel with presence) reach `presence` listeners and
// `onPresence`, typed, in the leader and in follower tabs; message and channel listeners do not
// see them; they are deleted like any handled message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqsPushClient } from '../src/index.js';
import { presenceOf } from '../src/presence.js';
import { FakeSqs, encrypt, session, until } from './helpers.mjs';

const join = {
  type: 'presence',
  presence: 'join',
  channel: 'room:7',
  accountId: 100,
  userId: 201,
  sessionId: 'other-tab-session',
  lastSeen: '2026-12-08T00:00:00Z',
  messageId: 'p-1',
};

test('a presence event goes to onPresence and "presence" listeners, typed, and not to message listeners', async () => {
  const sqs = new FakeSqs();
  const s = session({ sessionId: 'mine', userId: 200 });
  const onPresence = [];
  const viaOn = [];
  const messages = [];
  const channel = [];
  const client = new SqsPushClient({
    session: s,
    fetch: sqs.fetch,
    share: false,
    onMessage: (m) => messages.push(m),
    onPresence: (p) => onPresence.push(p),
    onError: (e) => assert.fail(e),
  });
  client.on('presence', (p) => viaOn.push(p)).on('channel:room:7', (m) => channel.push(m));
  const send = (obj) => {
    const enc = encrypt(JSON.stringify(obj), s.aesKey);
    sqs.send(enc.body, enc.mac);
  };
  send(join);
  send({ ...join, presence: 'leave', userId: 200, sessionId: 'mine', messageId: 'p-2' });
  send({ message: 'hi', channel: 'room:7', messageId: 'm-1' });
  client.start();
  await until(() => onPresence.length === 2 && messages.length === 1 && sqs.remaining === 0, 3000, 'all three handled and deleted');
  await client.stop();
  assert.deepEqual(onPresence, [
    { presence: 'join', channel: 'room:7', accountId: 100, userId: 201, sessionId: 'other-tab-session', lastSeen: '2026-12-08T00:00:00Z', self: false, messageId: 'p-1' },
    { presence: 'leave', channel: 'room:7', accountId: 100, userId: 200, sessionId: 'mine', lastSeen: '2026-12-08T00:00:00Z', self: true, messageId: 'p-2' },
  ]);
  assert.deepEqual(viaOn, onPresence);
  assert.deepEqual(messages.map((m) => m.messageId), ['m-1'], 'message listeners get the chat line only');
  assert.deepEqual(channel.map((m) => m.messageId), ['m-1'], 'channel listeners too');
});

test('presence events reach a follower tab through the leader', async () => {
  const sqs = new FakeSqs();
  const s = session({ sqsUrl: `http://127.0.0.1:4566/123456789012/presence-${Date.now()}`, sessionId: 'mine' });
  const seen = [[], []];
  const clients = [0, 1].map((i) => new SqsPushClient({
    session: s,
    fetch: sqs.fetch,
    share: true,
    onMessage: () => {},
    onPresence: (p) => seen[i].push(p.presence),
    onError: () => {},
  }));
  clients[0].start();
  await until(() => clients[0].role === 'leader', 5000, 'a leader');
  clients[1].start();
  await until(() => clients[1].role === 'follower', 5000, 'a follower');
  const enc = encrypt(JSON.stringify(join), s.aesKey);
  sqs.send(enc.body, enc.mac);
  await until(() => seen[0].length === 1 && seen[1].length === 1, 5000, 'the join in both tabs');
  await Promise.all(clients.map((c) => c.stop()));
  assert.deepEqual(seen, [['join'], ['join']]);
});

test('only well-formed presence messages count as presence', () => {
  assert.equal(presenceOf({ ...join, presence: 'wave' }), null);
  assert.equal(presenceOf({ ...join, channel: undefined }), null);
  assert.equal(presenceOf({ ...join, type: 'chat' }), null);
  assert.equal(presenceOf({ message: 'hi' }), null);
  assert.equal(presenceOf(join, { sessionId: 'other-tab-session', userId: 999 }).self, false, 'same session id, another user');
});

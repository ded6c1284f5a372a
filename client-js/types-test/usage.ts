// Compiled with `tsc --noEmit -p types-test` (npm run test:types): the typed usage a frontend
// writes, checked against index.d.ts. The @ts-expect-error lines must stay errors.

import {
  SendError,
  SqsPushClient,
  SqsRequestError,
  type SqsPushMessage,
  type SqsPushPresence,
  type SqsPushSent,
  type SqsPushSession,
} from '@sqs-push/client';

interface Quote extends SqsPushMessage {
  symbol: string;
  price: number;
}

declare const session: SqsPushSession;

const client = new SqsPushClient<Quote>({
  session,
  hidden: 'poll',
  hiddenPollSeconds: 600,
  share: true,
  renew: async () => null, // the session is gone
  onMessage: (q) => console.log(q.symbol.toUpperCase(), q.price.toFixed(2)),
});

client
  .on('message', (q) => q.price * 2)
  .on('channel:prices', (q) => {
    const name: 'prices' = q.channel;
    return `${name} ${q.symbol}`;
  })
  .on('state', (s) => (s === 'ended' || s === 'paused' ? s : s))
  .on('role', (r) => r === 'leader')
  .on('ended', (e) => (e.reason === 'queue-gone' ? e.cause?.isQueueGone : false))
  .on('error', (err) => {
    if (err instanceof SqsRequestError && (err.isClockSkewError || err.isQueueGone)) return err.awsCode;
    return err.code;
  });

const onState = (s: string) => s;
client.off('state', onState);
client.start();
void client.stop();

// @ts-expect-error: no such event
client.on('messages', () => {});
// @ts-expect-error: a Quote has no `headline`
client.on('message', (q) => q.headline.length);
// @ts-expect-error: hidden is "poll" or "pause"
new SqsPushClient({ session, hidden: 'sleep' });
// @ts-expect-error: the state union has no "closed"
const closed: typeof client.state = 'closed';
void closed;

// --- the way back: send, markRead, presence ---

interface ChatUp {
  chat: { text: string; room: string };
  typing: boolean;
}

const chat = new SqsPushClient<Quote, ChatUp>({
  session,
  heartbeatSeconds: 60,
  onPresence: (p: SqsPushPresence) => (p.presence === 'join' ? p.userId : p.lastSeen),
});
chat.on('presence', (p) => (p.self ? null : `${p.sessionId} ${p.presence} ${p.channel}`));
const sent: Promise<SqsPushSent> = chat.send('chat', { text: 'hi', room: 'room:7' });
void sent.then((s) => s.messageId.length + s.seq);
void chat.send('typing', true, { signal: AbortSignal.timeout(5000) });
void chat.markRead(['m-1', 'm-2']).then((all) => all.map((s) => s.messageId));
void chat.send('chat', { text: 'x', room: 'y' }).catch((e: unknown) => {
  if (e instanceof SendError && e.reason === 'too-large') return e.seq;
  return e instanceof SendError ? e.awsCode : undefined;
});
// any type, any JSON body, without a map
void client.send('cart.add', { sku: 'A1', n: 2 });

// @ts-expect-error: not a type of ChatUp
void chat.send('shout', 'HI');
// @ts-expect-error: typing's body is a boolean
void chat.send('typing', 'yes');
// @ts-expect-error: heartbeats are the client's own
void client.send('heartbeat', {});
// @ts-expect-error: read goes through markRead
void client.send('read', { messageIds: ['m-1'] });
// @ts-expect-error: ids are strings
void chat.markRead([1, 2]);
// @ts-expect-error: join or leave, nothing else
chat.on('presence', (p) => p.presence === 'wave');

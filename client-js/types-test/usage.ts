// Compiled with `tsc --noEmit -p types-test` (npm run test:types): the typed usage a frontend
// writes, checked against index.d.ts. The @ts-expect-error lines must stay errors.

import { SqsPushClient, SqsRequestError, type SqsPushMessage, type SqsPushSession } from '@sqs-push/client';

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

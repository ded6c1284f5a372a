// The smoke test's steps (scripts/smoke runs it; read that file for how). Talks to a deployed
// stack as its users do: the backend's calls go through the `sqs-push call-gw` CLI (SigV4, the
// caller's AWS credentials or the local stack's keys), the browser's through the real client
// (client-js: long-poll, verify, decrypt, delete). Prints one line per step with its latency and
// exits non-zero at the first step that fails. Never prints keys, credentials or message bodies.
//
// Environment (set by scripts/smoke):
//   SMOKE_STAGE, SMOKE_REGION   the stack
//   SQS_PUSH_BIN                the sqs-push CLI
//   SQS_PUSH_API_URL            the API (AWS); SQS_PUSH_LOCAL_API_URL for stage local
//   SMOKE_EVERYONE=1            send the everyone message (always on for stage local)
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { SqsPushClient } from '../client-js/src/index.js';
import { endpointFor, sqsCall } from '../client-js/src/sqs.js';

const stage = process.env.SMOKE_STAGE;
const region = process.env.SMOKE_REGION;
const cli = process.env.SQS_PUSH_BIN;
const local = stage === 'local';
const everyone = local || process.env.SMOKE_EVERYONE === '1';
const RECEIVE_MS = 60_000;

const results = [];
function report(step, ms, note = '') {
  results.push({ step, ms });
  const time = ms === null ? '     -   ' : `${ms.toFixed(0).padStart(6)} ms`;
  console.log(`  ${time}  ${step}${note ? `  (${note})` : ''}`);
}
function fail(step, why) {
  console.log(`  FAILED   ${step}: ${why}`);
  process.exit(1);
}

/** One signed API call; resolves to the answer's JSON. */
function api(path) {
  return new Promise((resolve, reject) => {
    execFile(cli, ['call-gw', stage, region, path], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${path.split('?')[0]}: ${stderr.trim().split('\n').pop() || error.message}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`${path.split('?')[0]}: the answer is not JSON`));
      }
    });
  });
}

async function timed(step, run, note) {
  const started = performance.now();
  try {
    const value = await run();
    report(step, performance.now() - started, typeof note === 'function' ? note(value) : note);
    return value;
  } catch (error) {
    fail(step, error.message);
  }
}

// Ids far above any real user's, random per run, so the messages reach only these sessions.
const accountId = 9_000_000_000_000_000 + randomInt(0, 2 ** 40);
const userId = accountId + 1;
const otherUserId = accountId + 2;
const sessionId = `smoke-${randomBytes(6).toString('hex')}`;
const otherSessionId = `smoke-${randomBytes(6).toString('hex')}`;

console.log(`smoke test of stage ${stage} in ${region} (account ${accountId}, session ${sessionId})`);

const created = await timed('create a session', () => api(`/create/${accountId}/${userId}/${sessionId}`));
const session = created.session;
if (!session || !session.sqsUrl || !session.aesKey) fail('create a session', 'the answer has no session');
const other = await timed('create a second session (another user)', () =>
  api(`/create/${accountId}/${otherUserId}/${otherSessionId}`),
);

// The real client, long-polling the first session's queue.
const waiting = new Map();
const errors = [];
const client = new SqsPushClient({
  session,
  waitTimeSeconds: local ? 1 : 20,
  onMessage: (message) => {
    const done = waiting.get(message.message);
    if (done) done(message);
  },
  onError: (error) => errors.push(error),
});
client.start();

async function receive(step, path, text) {
  const arrived = new Promise((resolve) => waiting.set(text, resolve));
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no message within ${RECEIVE_MS / 1000} s (client errors: ${errors.map((e) => e.name).join(', ') || 'none'})`)),
      RECEIVE_MS,
    );
  });
  await timed(step, async () => {
    await api(path);
    const message = await Promise.race([arrived, timeout]);
    clearTimeout(timer);
    return message;
  });
}

const tag = randomBytes(4).toString('hex');
await receive('user message received', `/notify/user/${userId}?message=smoke+user+${tag}`, `smoke user ${tag}`);
await receive(
  'account message received',
  `/notify/account/${accountId}?message=smoke+account+${tag}`,
  `smoke account ${tag}`,
);
if (everyone) {
  await receive('everyone message received', `/notify?message=smoke+everyone+${tag}`, `smoke everyone ${tag}`);
} else {
  report('everyone message', null, 'skipped: it would reach every live session of the stage; pass --everyone');
}
await client.stop();

// The first session's credentials against the second session's queue.
const isolationStep = "credentials cannot read another session's queue";
if (local) {
  report(isolationStep, null, 'not checked: the emulator does not enforce IAM; scripts/smoke checks it on AWS');
} else {
  await timed(isolationStep, async () => {
    try {
      await sqsCall({
        fetch: globalThis.fetch,
        endpoint: endpointFor(other.session.sqsUrl),
        region: session.region,
        credentials: session,
        operation: 'ReceiveMessage',
        payload: { QueueUrl: other.session.sqsUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 },
        timeoutMs: 10_000,
      });
    } catch (error) {
      if (error.status === 403 || /AccessDenied/.test(error.awsCode || '')) return error.awsCode;
      throw new Error(`refused for another reason: ${error.awsCode || error.message}`);
    }
    throw new Error('the first session read the second session\'s queue');
  }, (code) => `refused: ${code || 'access denied'}`);
}

const renewed = await timed('renew', () => api(`/renew/${accountId}/${userId}/${sessionId}`));
if (renewed.session.sqsUrl !== session.sqsUrl) fail('renew', 'renew answered another queue');
await timed('renewed credentials read the queue', () =>
  sqsCall({
    fetch: globalThis.fetch,
    endpoint: endpointFor(session.sqsUrl),
    region: session.region,
    credentials: renewed.session,
    operation: 'ReceiveMessage',
    payload: { QueueUrl: session.sqsUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 },
    timeoutMs: 10_000,
  }),
);
await timed('destroy', () => api(`/destroy/${accountId}/${userId}/${sessionId}`));
await timed('destroy the second session', () => api(`/destroy/${accountId}/${otherUserId}/${otherSessionId}`));
await timed('a destroyed session is gone', async () => {
  try {
    await api(`/status/${accountId}/${userId}/${sessionId}`);
  } catch (error) {
    if (/HTTP 404/.test(error.message)) return;
    throw error;
  }
  throw new Error('status still finds the destroyed session');
});

const total = results.reduce((sum, r) => sum + (r.ms || 0), 0);
console.log(`smoke test passed: ${results.filter((r) => r.ms !== null).length} steps in ${(total / 1000).toFixed(1)} s`);

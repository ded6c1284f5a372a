// The AWS emulator for tests that need a real SQS: the one SQS_PUSH_EMULATOR names (scripts/test
// starts one), or else one started here (scripts/emulator on a free port, stopped when the test
// file ends). Either way the test runs: there is no skip. Admin calls are signed with the
// emulator's dummy credentials.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { AwsClient } from 'aws4fetch';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const admin = new AwsClient({ accessKeyId: 'test', secretAccessKey: 'test', service: 'sqs', region: 'us-east-1', retries: 0 });

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

let started = null;

/** The emulator's URL; starts one (once per test file) when SQS_PUSH_EMULATOR is not set. */
export async function emulatorUrl() {
  if (process.env.SQS_PUSH_EMULATOR) return process.env.SQS_PUSH_EMULATOR;
  if (!started) started = startEmulator();
  return (await started).url;
}

/** Stop the emulator this file started (no-op for one named by SQS_PUSH_EMULATOR). */
export async function stopEmulator() {
  if (!started) return;
  const { child } = await started.catch(() => ({}));
  started = null;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function startEmulator() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(`${repo}scripts/emulator`, ['--port', String(port)], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const end = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`scripts/emulator exited (code ${child.exitCode}): ${output.slice(-2000)}`);
    try {
      await (await fetch(`${url}/`)).arrayBuffer();
      return { url, child };
    } catch {
      if (Date.now() > end) {
        child.kill('SIGKILL');
        throw new Error(`scripts/emulator gave no answer at ${url} within 90 s: ${output.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** One SQS JSON-protocol call as the emulator's admin; throws on an error answer. */
export async function sqsAdmin(url, operation, payload) {
  const res = await admin.fetch(new URL('/', url).toString(), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${operation}` },
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${operation}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

/** A fresh queue named like the stack's (`sqs-push-local…`); resolves with its URL. */
export async function createQueue(url, kind, attributes = {}) {
  const name = `sqs-push-local-${kind}-${randomBytes(12).toString('hex')}`;
  const { QueueUrl } = await sqsAdmin(url, 'CreateQueue', { QueueName: name, Attributes: attributes });
  return QueueUrl;
}

/** Every message now on the queue (received once, then deleted), oldest first by SentTimestamp. */
export async function drainQueue(url, QueueUrl) {
  const out = [];
  for (;;) {
    const { Messages = [] } = await sqsAdmin(url, 'ReceiveMessage', {
      QueueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageAttributeNames: ['All'],
      AttributeNames: ['All'],
    });
    if (!Messages.length) break;
    out.push(...Messages);
    await sqsAdmin(url, 'DeleteMessageBatch', {
      QueueUrl,
      Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
    });
  }
  return out.sort((a, b) => Number(a.Attributes.SentTimestamp) - Number(b.Attributes.SentTimestamp));
}

// A real receive/delete against the AWS emulator (moto server).
// Set SQS_PUSH_EMULATOR (e.g. http://127.0.0.1:4566) to run it; a plain `npm test` skips it
// without, CI and scripts/test fail without (helpers.mjs, skipUnlessRequired).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AwsClient } from 'aws4fetch';
import { SqsPushClient } from '../src/index.js';
import { encrypt, randomKey, requirePrerequisite, skipUnlessRequired, until } from './helpers.mjs';

const EMULATOR = process.env.SQS_PUSH_EMULATOR;
const missing = EMULATOR ? null : 'SQS_PUSH_EMULATOR is not set (e.g. SQS_PUSH_EMULATOR=http://127.0.0.1:4566)';
const skip = skipUnlessRequired(missing);

const admin = new AwsClient({ accessKeyId: 'test', secretAccessKey: 'test', service: 'sqs', region: 'us-east-1', retries: 0 });

async function sqs(operation, payload) {
  const res = await admin.fetch(new URL('/', EMULATOR).toString(), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${operation}` },
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  assert.ok(res.ok, `${operation}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function counts(QueueUrl) {
  const { Attributes } = await sqs('GetQueueAttributes', {
    QueueUrl,
    AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
  });
  return [Number(Attributes.ApproximateNumberOfMessages), Number(Attributes.ApproximateNumberOfMessagesNotVisible)];
}

test('emulator: CORS preflight is answered at the endpoint root', { skip }, async () => {
  requirePrerequisite(missing);
  const res = await fetch(new URL('/', EMULATOR), {
    method: 'OPTIONS',
    headers: {
      Origin: 'http://localhost:8080',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'authorization,content-type,x-amz-date,x-amz-security-token,x-amz-target',
    },
  });
  await res.arrayBuffer();
  assert.ok(res.ok, `OPTIONS / answered HTTP ${res.status}`);
  assert.ok(res.headers.get('access-control-allow-origin'), 'no Access-Control-Allow-Origin');
});

test('emulator: a real receive, verify, decrypt and delete', { skip, timeout: 60_000 }, async () => {
  requirePrerequisite(missing);
  const name = `sqs-push-local-${randomBytes(32).toString('base64url').slice(0, 43)}`;
  const { QueueUrl } = await sqs('CreateQueue', { QueueName: name });
  try {
    const aesKey = randomKey();
    const message = { message: 'Hello User', userId: 200, messageId: `emu-${randomBytes(8).toString('hex')}` };
    const { body, mac } = encrypt(JSON.stringify(message), aesKey);
    await sqs('SendMessage', {
      QueueUrl,
      MessageBody: body,
      MessageAttributes: { mac: { DataType: 'String', StringValue: mac } },
    });

    const got = [];
    const errors = [];
    const states = [];
    const client = new SqsPushClient({
      session: {
        sqsUrl: QueueUrl,
        sqsQueueName: name,
        aesKey,
        accessKey: 'test',
        secretKey: 'test',
        sessionToken: 'test-session-token',
        expires: Math.floor(Date.now() / 1000) + 3600,
        region: 'us-east-1',
      },
      onMessage: (m) => got.push(m),
      onError: (e) => errors.push(e),
      onState: (s) => states.push(s),
      waitTimeSeconds: 1,
    });
    client.start();
    try {
      await until(() => got.length === 1 || errors.length > 0, 20_000, 'the message');
      assert.deepEqual(errors, []);
      assert.deepEqual(got, [message]);
      await until(() => client.state === 'connected', 5000, 'connected');
      // the delete follows the handler; wait until the queue is empty
      let c;
      const end = Date.now() + 10_000;
      do {
        c = await counts(QueueUrl);
        if (c[0] === 0 && c[1] === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      } while (Date.now() < end);
      assert.deepEqual(c, [0, 0], 'queue is empty (nothing visible, nothing in flight)');
    } finally {
      await client.stop();
    }
    assert.deepEqual(states, ['connecting', 'connected', 'stopped']);
    assert.deepEqual(errors, []);
  } finally {
    await sqs('DeleteQueue', { QueueUrl });
  }
});

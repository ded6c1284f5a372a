// The IAM check on a small template and call log of its own: green when the roles allow what
// was called and no more, red naming the call when a role lacks it (the sender's hand-on, as
// serverless.yml had it), and red when a browser's credentials reach another session's queue or
// may do more than send on the upstream queue.
// Run by scripts/test: node --test scripts/iam/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const check = fileURLToPath(new URL('./check.mjs', import.meta.url));
const queue = (name) => `arn:aws:sqs:us-east-1:123456789012:${name}`;
const ownQueue = `sqs-push-local_${'a'.repeat(43)}`;
const otherQueue = `sqs-push-local_${'b'.repeat(43)}`;
const upstream = 'sqs-push-local-upstream';
const sessionPolicy = (name, upstreamActions = 'sqs:SendMessage') =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'], Resource: queue(name) },
      { Sid: 'SendUpstreamOnly', Effect: 'Allow', Action: upstreamActions, Resource: queue(upstream) },
    ],
  });

function template({ senderMayInvoke = true, ownerCondition = true, upstreamActions = 'sqs:SendMessage' } = {}) {
  const statement = (sid, action, resource) => ({ Sid: sid, Effect: 'Allow', Action: action, Resource: resource });
  const sender = [statement('Send', 'sqs:SendMessage', { 'Fn::Sub': 'arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:sqs-push-dev_*' })];
  if (senderMayInvoke) {
    sender.push(statement('HandOn', 'lambda:InvokeFunction', { 'Fn::Sub': 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:sqs-push-dev-sender' }));
  }
  const reader = statement('Read', ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'], {
    'Fn::Sub': 'arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:sqs-push-dev_*',
  });
  if (ownerCondition) reader.Condition = { StringEquals: { 'aws:ResourceTag/owner': '${cognito-identity.amazonaws.com:sub}' } };
  const role = (statements) => ({ Type: 'AWS::IAM::Role', Properties: { Policies: [{ PolicyName: 'p', PolicyDocument: { Version: '2012-10-17', Statement: statements } }] } });
  return {
    Parameters: { LegacyQueueNames: { Type: 'String', Default: 'false' } },
    Resources: {
      SenderLambdaFunction: {
        Type: 'AWS::Lambda::Function',
        Properties: { FunctionName: 'sqs-push-dev-sender', Role: { 'Fn::Sub': '${SenderRole.Arn}' }, Environment: { Variables: { SQS_PUSH_STAGE: 'dev' } } },
      },
      SenderRole: role(sender),
      IdentitiesRole: role([reader, statement('SendUpstreamOnly', upstreamActions, { 'Fn::GetAtt': ['UpstreamQueue', 'Arn'] })]),
      UpstreamQueue: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'sqs-push-dev-upstream' } },
      IdentityPool: { Type: 'AWS::Cognito::IdentityPool', Properties: { IdentityPoolName: 'sqs_push_dev' } },
      IdentityPoolRoles: { Type: 'AWS::Cognito::IdentityPoolRoleAttachment', Properties: { Roles: { authenticated: { 'Fn::GetAtt': ['IdentitiesRole', 'Arn'] } } } },
      DeadLetterQueue: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'sqs-push-dlq-dev' } },
    },
  };
}

const calls = [
  { key: 'AKIDLOCALFNSENDER', service: 'sqs', action: 'SendMessageBatch', region: 'us-east-1', resources: [queue(ownQueue)], status: 200 },
  { key: 'AKIDLOCALFNSENDER', service: 'lambda', action: 'InvokeFunction', region: 'us-east-1', resources: ['arn:aws:lambda:us-east-1:123456789012:function:sqs-push-local-sender'] },
  { kind: 'web-identity', key: 'ASIAONE', role: 'r', policy: sessionPolicy(ownQueue), identity: 'us-east-1:one' },
  { kind: 'web-identity', key: 'ASIATWO', role: 'r', policy: sessionPolicy(otherQueue), identity: 'us-east-1:two' },
  { key: 'ASIAONE', service: 'sqs', action: 'ReceiveMessage', region: 'us-east-1', resources: [queue(ownQueue)], tags: { owner: 'us-east-1:one' }, status: 200 },
  { key: 'ASIAONE', service: 'sqs', action: 'SendMessage', region: 'us-east-1', resources: [queue(upstream)], status: 200 },
];

function run(templateJson, callLines = calls, extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'iam-check-'));
  writeFileSync(join(dir, 'template.json'), JSON.stringify(templateJson));
  writeFileSync(join(dir, 'calls.jsonl'), callLines.map((c) => JSON.stringify(c)).join('\n') + '\n');
  writeFileSync(join(dir, 'not-exercised.json'), '[]');
  const result = spawnSync(process.execPath, [check, '--template', join(dir, 'template.json'), '--calls', join(dir, 'calls.jsonl'), ...extra], {
    encoding: 'utf8',
    env: { ...process.env, SQS_PUSH_IAM_NOT_EXERCISED: join(dir, 'not-exercised.json') },
  });
  return { status: result.status, output: result.stdout + result.stderr };
}

test('iam check: green when every call is allowed and every grant used', () => {
  const { status, output } = run(template());
  assert.equal(status, 0, output);
  assert.match(output, /allowed lambda:InvokeFunction arn:aws:lambda:us-east-1:123456789012:function:sqs-push-dev-sender/);
});

test("iam check: red, naming the call, when the sender's role may not invoke the sender", () => {
  const { status, output } = run(template({ senderMayInvoke: false }));
  assert.equal(status, 1, output);
  assert.match(output, /sender calls lambda:InvokeFunction on arn:aws:lambda:us-east-1:123456789012:function:sqs-push-dev-sender, which its role SenderRole does not allow/);
});

test('iam check: red when a grant is used by no call', () => {
  const unused = calls.filter((c) => c.service !== 'lambda');
  const { status, output } = run(template(), unused);
  assert.equal(status, 1, output);
  assert.match(output, /SenderRole allows lambda:InvokeFunction on .*sqs-push-dev-sender, which no end-to-end test used/);
});

test("iam check: red when a browser's credentials reach another session's queue", () => {
  // Both layers gone: the role without its owner condition, the session policy naming every queue.
  const wide = calls.map((c) => (c.kind === 'web-identity' ? { ...c, policy: c.policy.replace(/sqs-push-local_[a-z]{43}/, 'sqs-push-local_*') } : c));
  const { status, output } = run(template({ ownerCondition: false }), wide);
  assert.equal(status, 1, output);
  assert.match(output, /sqs:ReceiveMessage on another session's queue .* is Allowed, expected denied/);
});

test('iam check: one layer alone still keeps browsers to their own queue', () => {
  const { status, output } = run(template({ ownerCondition: false }));
  assert.equal(status, 0, output);
});

test('iam check: red when a browser may receive from the upstream queue (other sessions\' messages)', () => {
  const both = ['sqs:SendMessage', 'sqs:ReceiveMessage'];
  const wide = calls.map((c) => (c.kind === 'web-identity' ? { ...c, policy: sessionPolicy(c.policy.includes('a'.repeat(43)) ? ownQueue : otherQueue, both) } : c));
  const { status, output } = run(template({ upstreamActions: both }), wide);
  assert.equal(status, 1, output);
  assert.match(output, /sqs:ReceiveMessage on the upstream queue .* is Allowed, expected denied/);
});

test('iam check: red when a browser may not send upstream', () => {
  const { status, output } = run(template({ upstreamActions: 'sqs:GetQueueUrl' }));
  assert.equal(status, 1, output);
  assert.match(output, /sqs:SendMessage on .*sqs-push-dev-upstream .* is ImplicitlyDenied/);
});

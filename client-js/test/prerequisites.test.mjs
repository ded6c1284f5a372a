// A test whose prerequisite is missing (the bundle, the emulator) skips only on a developer's
// plain `npm test`; in CI and under scripts/test it runs and fails, so CI never passes by skipping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requirePrerequisite, skipUnlessRequired } from './helpers.mjs';

test('prerequisites: a missing one skips locally, fails in CI and under scripts/test', () => {
  const missing = 'dist/x.js is not built';
  assert.match(skipUnlessRequired(missing, {}), /^dist\/x\.js is not built; skipping/);
  for (const env of [{ CI: 'true' }, { CI: '1' }, { SQS_PUSH_TEST_ALL: '1' }]) {
    assert.equal(skipUnlessRequired(missing, env), false, JSON.stringify(env));
  }
  for (const env of [{ CI: 'false' }, { CI: '0' }, { CI: '' }]) {
    assert.notEqual(skipUnlessRequired(missing, env), false, JSON.stringify(env));
  }
  assert.equal(skipUnlessRequired(null, {}), false, 'present: runs');
  assert.throws(() => requirePrerequisite(missing), /prerequisite missing: dist\/x\.js is not built/);
  requirePrerequisite(null);
});

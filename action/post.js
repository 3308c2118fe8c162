// The action's post step (post-if: always()): after the job's last step,
// failed or cancelled too, run `tf-lock-reaper release --job`, which
// releases every lock an `exec` of this job recorded, in any directory, each
// only if it is still exactly what was recorded. A runner that dies runs no
// post step: heartbeats and the reaper cover that.
'use strict';

const { spawnSync } = require('node:child_process');
const runner = require('./runner.js');

// Several AWS calls per lock, each with its own timeout inside the binary;
// this bounds the whole step so a cancelled job still ends.
const RELEASE_TIMEOUT_MS = 3 * 60 * 1000;

function post() {
  const binary = runner.state('binary');
  const records = runner.state('records');
  if (!binary || !records) {
    console.log('tf-lock-reaper: the main step installed nothing, so no exec ran under it: nothing to release');
    return 0;
  }
  if (runner.input('release') === 'false') {
    console.log('tf-lock-reaper: release is false: the locks recorded in this job are left to their heartbeats');
    return 0;
  }
  const run = spawnSync(binary, ['release', '--job'], {
    env: { ...process.env, TF_LOCK_REAPER_JOB_RECORDS: records },
    stdio: 'inherit',
    timeout: RELEASE_TIMEOUT_MS,
  });
  if (run.status === 0) {
    return 0;
  }
  const why = run.error ? run.error.message : `exit ${run.status ?? run.signal}`;
  runner.error(`releasing this job's Terraform locks failed (${why}); `
    + 'the lines above name each lock; their heartbeats stop, so the reaper or the next job releases them');
  return 1;
}

try {
  process.exitCode = post();
} catch (e) {
  runner.error(e.message);
  process.exitCode = 1;
}

// The action's main step: install the release with install.sh (checked
// against the release's SHA256SUMS), put it on PATH, and point every later
// `tf-lock-reaper exec` of the job at one index of lock records, which the
// post step (post.js) releases however the job ends.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const runner = require('./runner.js');

// The installer downloads a few MB; a stuck mirror must not hold the job.
const INSTALL_TIMEOUT_MS = 5 * 60 * 1000;

function main() {
  const home = path.join(runner.required('RUNNER_TEMP'), 'tf-lock-reaper');
  const bin = path.join(home, 'bin');
  const records = path.join(home, 'records');
  const version = runner.input('version') || runner.ownVersion();
  const installed = spawnSync('sh', [path.join(__dirname, '..', 'install.sh')], {
    env: {
      ...process.env,
      TF_LOCK_REAPER_VERSION: version,
      TF_LOCK_REAPER_INSTALL_DIR: bin,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
    timeout: INSTALL_TIMEOUT_MS,
    encoding: 'utf8',
  });
  process.stderr.write(installed.stderr || '');
  if (installed.status !== 0) {
    const said = (installed.stderr || '').trim().split('\n').pop()
      || (installed.error ? installed.error.message : `install.sh exited ${installed.status}`);
    throw new Error(`installing tf-lock-reaper ${version} failed: ${said}`);
  }
  const binary = path.join(bin, 'tf-lock-reaper');
  fs.mkdirSync(records, { recursive: true });
  runner.addPath(bin);
  runner.setEnv('TF_LOCK_REAPER_JOB_RECORDS', records);
  runner.saveState('binary', binary);
  runner.saveState('records', records);
  runner.setOutput('path', binary);
}

try {
  main();
} catch (e) {
  runner.error(e.message);
  process.exitCode = 1;
}

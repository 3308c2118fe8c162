// The GitHub Action (action.yml, action/) run the way GitHub's runner runs a
// JavaScript action: `node action/main.js` with INPUT_* and the GITHUB_PATH,
// GITHUB_ENV, GITHUB_STATE and GITHUB_OUTPUT files in RUNNER_TEMP, then
// `node action/post.js` with the saved state as STATE_*. Started by
// `cargo test --test it -- action::`, which provides a loopback release
// server, moto and a Terraform stack (TEST_* variables).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ACTION = path.join(__dirname, '..', '..', 'action');

function given(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run this through \`cargo test --test it -- action::\``);
  return value;
}

/** A fresh runner: RUNNER_TEMP and the command files, as GitHub lays them out. */
function newRunner() {
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-'));
  const files = {};
  for (const name of ['GITHUB_PATH', 'GITHUB_ENV', 'GITHUB_STATE', 'GITHUB_OUTPUT']) {
    files[name] = path.join(temp, `${name.toLowerCase()}.txt`);
    fs.writeFileSync(files[name], '');
  }
  return { temp, files, env: { ...process.env, RUNNER_TEMP: temp, GITHUB_ACTIONS: 'true', ...files } };
}

/** `NAME=value` lines of a command file. */
function commands(file) {
  return Object.fromEntries(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

function step(script, env, cwd) {
  const out = spawnSync(process.execPath, [path.join(ACTION, script)], { env, cwd, encoding: 'utf8', timeout: 240000 });
  return { code: out.status, said: `${out.stdout}${out.stderr}` };
}

/** The post step's environment: the main step's state as STATE_*. */
function postEnv(runner) {
  const env = { ...runner.env };
  for (const [name, value] of Object.entries(commands(runner.files.GITHUB_STATE))) {
    env[`STATE_${name}`] = value;
  }
  return env;
}

/** The lock item, read from moto's DynamoDB API directly. */
async function lockItem() {
  const region = process.env.AWS_REGION || 'us-east-1';
  const res = await fetch(given('TEST_DYNAMODB_ENDPOINT'), {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': 'DynamoDB_20120810.GetItem',
      Authorization: `AWS4-HMAC-SHA256 Credential=${process.env.AWS_ACCESS_KEY_ID}/20261205/${region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify({ TableName: given('TEST_LOCK_TABLE'), Key: { LockID: { S: given('TEST_LOCK_PATH') } }, ConsistentRead: true }),
    signal: AbortSignal.timeout(10000),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).Item;
}

async function until(what, check, seconds) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${what} within ${seconds}s`);
}

test('main installs the release; after Terraform under exec is SIGKILLed, post releases its lock', async () => {
  const runner = newRunner();
  const main = step('main.js', { ...runner.env, INPUT_VERSION: '', INPUT_RELEASE: 'true' }, runner.temp);
  assert.equal(main.code, 0, main.said);
  const bin = path.join(runner.temp, 'tf-lock-reaper', 'bin');
  assert.deepEqual(fs.readFileSync(runner.files.GITHUB_PATH, 'utf8'), `${bin}\n`);
  const records = commands(runner.files.GITHUB_ENV).TF_LOCK_REAPER_JOB_RECORDS;
  assert.equal(records, path.join(runner.temp, 'tf-lock-reaper', 'records'));
  assert.equal(commands(runner.files.GITHUB_OUTPUT).path, path.join(bin, 'tf-lock-reaper'));
  const version = spawnSync(path.join(bin, 'tf-lock-reaper'), ['--version'], { encoding: 'utf8' });
  assert.match(version.stdout, /^tf-lock-reaper \d+\.\d+\.\d+/, version.stderr);

  // A later step of the job, in another directory: Terraform under exec, killed with its wrapper.
  const stack = given('TEST_STACK_DIR');
  const env = { ...runner.env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, TF_LOCK_REAPER_JOB_RECORDS: records };
  const job = spawn('tf-lock-reaper', ['exec', '--', 'terraform', 'apply', '-auto-approve', '-input=false', '-no-color', '-var=hang_seconds=120'],
    { cwd: stack, env, detached: true, stdio: 'ignore' });
  const ended = new Promise((resolve) => job.on('exit', resolve));
  const record = path.join(stack, '.terraform', 'tf-lock-reaper.json');
  await until('exec recorded the lock', () => fs.existsSync(record) && JSON.parse(fs.readFileSync(record, 'utf8')).locks.length === 1, 90);
  process.kill(-job.pid, 'SIGKILL');
  await ended;
  assert.ok(await lockItem(), 'the killed job left its lock');

  const post = step('post.js', postEnv(runner), runner.temp);
  assert.equal(post.code, 0, post.said);
  assert.match(post.said, /lock [0-9a-f-]+: .*released/, post.said);
  assert.equal(await lockItem(), undefined, 'the post step released the lock');

  const again = step('post.js', postEnv(runner), runner.temp);
  assert.equal(again.code, 0, again.said);
  assert.match(again.said.trim(), /^nothing to release: 1 command\(s\) ran under exec in this job/);
  assert.equal(again.said.trim().split('\n').length, 1, again.said);
});

test('a post step with nothing recorded exits 0 with one line', () => {
  const runner = newRunner();
  const main = step('main.js', { ...runner.env, INPUT_VERSION: 'latest' }, runner.temp);
  assert.equal(main.code, 0, main.said);
  const post = step('post.js', postEnv(runner), runner.temp);
  assert.equal(post.code, 0, post.said);
  assert.match(post.said, /^nothing to release: 0 command\(s\) ran under exec in this job .*\n$/);

  const noMain = step('post.js', newRunner().env, runner.temp);
  assert.equal(noMain.code, 0, noMain.said);
  assert.match(noMain.said, /^tf-lock-reaper: the main step installed nothing.*: nothing to release\n$/);
});

test('a version that is not published fails the main step in one line, with nothing on PATH', () => {
  const runner = newRunner();
  const main = step('main.js', { ...runner.env, INPUT_VERSION: '9.9.9' }, runner.temp);
  assert.equal(main.code, 1, main.said);
  const annotations = main.said.split('\n').filter((l) => l.startsWith('::error'));
  assert.equal(annotations.length, 1, main.said);
  assert.match(annotations[0], /installing tf-lock-reaper 9\.9\.9 failed: .*9\.9\.9 is not published/);
  assert.equal(fs.readFileSync(runner.files.GITHUB_PATH, 'utf8'), '');
  assert.equal(fs.readFileSync(runner.files.GITHUB_STATE, 'utf8'), '', 'the post step has nothing to do');
});

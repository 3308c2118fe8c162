// What a JavaScript action reads from and writes to GitHub's runner, with
// node's built-ins only: inputs (INPUT_*), the GITHUB_PATH / GITHUB_ENV /
// GITHUB_STATE / GITHUB_OUTPUT files, and one-line `::error::` annotations.
// No npm dependencies, so nothing is bundled or vendored.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

/** An input, as the runner passes it: INPUT_<NAME upper-cased, spaces as _>. */
function input(name) {
  return (process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '').trim();
}

/** A variable the runner always sets; missing means we are not in a runner. */
function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this as a GitHub Actions step (the runner sets it)`);
  }
  return value;
}

/** Append `name=value` to one of the runner's command files. */
function appendCommand(fileVariable, name, value) {
  if (/[\r\n]/.test(value)) {
    throw new Error(`${name} must be one line for ${fileVariable}`);
  }
  fs.appendFileSync(required(fileVariable), `${name}=${value}\n`);
}

/** Put a directory on PATH for the later steps. */
function addPath(dir) {
  fs.appendFileSync(required('GITHUB_PATH'), `${dir}\n`);
  process.env.PATH = `${dir}${path.delimiter}${process.env.PATH || ''}`;
}

const setEnv = (name, value) => appendCommand('GITHUB_ENV', name, value);
/** Saved for the post step, which reads it as STATE_<name>. */
const saveState = (name, value) => appendCommand('GITHUB_STATE', name, value);
const setOutput = (name, value) => appendCommand('GITHUB_OUTPUT', name, value);
const state = (name) => process.env[`STATE_${name}`] || '';

/** One annotation line; the runner shows it on the job's summary. */
function error(message) {
  const line = String(message).split(/\r?\n/).filter(Boolean).join('; ');
  process.stdout.write(`::error title=tf-lock-reaper::${line}\n`);
}

/** The release this action's own ref belongs to: its Cargo.toml version. */
function ownVersion() {
  const manifest = fs.readFileSync(path.join(__dirname, '..', 'Cargo.toml'), 'utf8');
  const match = /^version\s*=\s*"([^"]+)"/m.exec(manifest);
  if (!match) {
    throw new Error('the action\'s Cargo.toml names no version: set the input `version`');
  }
  return match[1];
}

module.exports = { input, required, addPath, setEnv, saveState, setOutput, state, error, ownVersion };

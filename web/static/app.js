// The page: the core's `explain` (WebAssembly, the same code as
// `tf-lock-reaper explain`) over what is pasted, drawn with textContent only
// (pasted text is data, never markup). No request after load: the module
// and its .wasm come from this origin, and nothing else is fetched.
import init, { explain } from './pkg/tf_lock_reaper_web.js';

const $ = (id) => document.getElementById(id);
const form = $('form'), input = $('input'), result = $('result'), reportButton = $('report');
let last = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function answer(text, redact) {
  const hours = Number($('window').value) || 2;
  try {
    return JSON.parse(explain(text, Date.now(), Math.max(1, hours * 3600), redact));
  } catch (e) {
    // A panic in the module is in the console (console_error_panic_hook).
    return { error: `something went wrong in the WebAssembly module (${e}); see the browser console` };
  }
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Select and copy';
  }
  setTimeout(() => { button.textContent = button.dataset.label; }, 1500);
}

function copyButton(text, label = 'Copy') {
  const b = el('button', { type: 'button', class: 'copy' }, label);
  b.dataset.label = label;
  b.addEventListener('click', () => copy(text, b));
  return b;
}

function render(a) {
  result.replaceChildren();
  last = a;
  reportButton.disabled = !!a.error;
  if (a.error) {
    result.append(el('p', { class: 'error', id: 'error' }, a.error));
    return;
  }
  result.append(el('h2', {}, 'Diagnosis'));
  result.append(el('p', { class: 'hint' }, `Recognised: ${a.recognised.join('; ')}. Ages on ${a.clock ?? 'no clock'}.`));
  a.locks.forEach((l, i) => {
    const dl = el('dl', { class: 'lock' });
    const row = (k, v) => { if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {}, k), el('dd', {}, v)); };
    row('ID', l.id); row('path', l.path); row('workspace', l.workspace); row('who', [l.who, l.operation].filter(Boolean).join(' '));
    row('version', l.version); row('created', l.created); row('age', l.age_seconds === null ? '' : age(l.age_seconds));
    row('read from', l.from.join(', '));
    result.append(el('h3', {}, `Lock ${i + 1}: ${l.kind} lock`), dl);
  });
  if (a.findings.length) {
    const ul = el('ul', { class: 'findings' });
    for (const f of a.findings) {
      const li = el('li', { class: 'finding', 'data-scenario': f.scenario }, el('strong', {}, f.scenario), ' ', f.summary);
      if (f.evidence.length) li.append(el('ul', { class: 'evidence' }, ...f.evidence.map((e) => el('li', {}, e))));
      ul.append(li);
    }
    result.append(el('h2', {}, 'What is going on'), ul);
  }
  if (a.commands.length) {
    const ol = el('ol', { class: 'commands' });
    for (const c of a.commands) {
      ol.append(el('li', { 'data-name': c.name }, el('pre', {}, el('code', { class: 'command' }, c.command)),
        copyButton(c.command), el('p', { class: 'why' }, c.why)));
    }
    result.append(el('h2', {}, 'Commands, safest first'), ol);
  }
  if (a.backend_fix) {
    const code = el('code', { class: 'diff' });
    for (const line of a.backend_fix.split('\n')) {
      code.append(el('span', { class: line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : '' }, line), '\n');
    }
    result.append(el('h2', {}, 'Backend block, fixed'), el('pre', { id: 'diff' }, code));
  }
}

function age(s) {
  if (s < 0) return 'in the future';
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : `${m}m${s % 60}s`;
}

// A report to share: account IDs masked too, as text.
function report() {
  const a = answer(input.value, true);
  if (a.error) return a.error;
  const lines = [`tf-lock-reaper explain (ages on ${a.clock})`];
  for (const l of a.locks) lines.push(`lock ${l.id}: ${l.kind} on ${l.path}, ${l.who} ${l.operation}, created ${l.created}`);
  for (const f of a.findings) lines.push(`${f.scenario}: ${f.summary}`);
  a.commands.forEach((c, i) => lines.push(`${i + 1}. ${c.command}`));
  if (a.backend_fix) lines.push(a.backend_fix);
  return lines.join('\n');
}

// A button, not a form submission: the page's CSP allows no form action at all.
const run = () => render(answer(input.value, $('redact').checked));
$('run').addEventListener('click', run);
form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
input.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
reportButton.dataset.label = 'Copy as report';
reportButton.addEventListener('click', () => copy(report(), reportButton));

init().then(() => {
  $('status').textContent = 'Paste above, then Explain.';
  document.body.dataset.ready = '1';
}, (e) => {
  $('status').textContent = `The WebAssembly module did not load: ${e}`;
  $('status').className = 'error';
});

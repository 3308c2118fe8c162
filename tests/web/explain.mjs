// Drives Debian's chromium (playwright-core, no browser download) over the
// explain page served on loopback by tests/it/web.rs. Reads the cases (a
// JSON array of pasted inputs) from argv[3], prints one JSON object: what
// the page showed for each, every request it made after load, the same
// answer with the network routed to nothing, timings, console errors.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [url, casesFile] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const out = { cases: [], requests: [], console_errors: [] };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
  page.on('pageerror', (e) => out.console_errors.push(String(e)));
  page.on('request', (r) => out.requests.push({ url: r.url(), after_load: out.loaded === true }));
  const start = Date.now();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  out.ready_ms = Date.now() - start;
  out.loaded = true;
  out.label = await page.$eval('label[for="input"]', (e) => e.textContent);
  out.region = await page.$eval('#result', (e) => [e.getAttribute('role'), e.getAttribute('aria-label')]);
  const show = async (text) => {
    await page.fill('#input', text);
    const t = Date.now();
    await page.click('#run');
    await page.waitForSelector('#result h2, #result #error', { timeout: 10000 });
    const took = Date.now() - t;
    return {
      took_ms: took,
      commands: await page.$$eval('#result code.command', (els) => els.map((e) => e.textContent)),
      scenarios: await page.$$eval('#result li.finding', (els) => els.map((e) => e.dataset.scenario)),
      text: await page.$eval('#result', (e) => e.innerText),
      diff: await page.$$eval('#diff', (els) => els.map((e) => e.textContent)),
    };
  };
  for (const c of cases) out.cases.push(await show(c));
  out.first_diagnosis_ms = out.ready_ms + (out.cases[0]?.took_ms ?? 0);
  // The network cut: every request refused, the browser offline. The page still answers.
  await context.route('**/*', (route) => route.abort());
  await context.setOffline(true);
  out.offline = await show(cases[0]);
} finally {
  await browser.close();
}
out.requests_after_load = out.requests.filter((r) => r.after_load).map((r) => r.url);
process.stdout.write(JSON.stringify(out));

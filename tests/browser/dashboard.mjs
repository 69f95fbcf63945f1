// The dashboard in headless Chromium, driven by tests/integration/test_dashboard.py
// (which starts junction, the backends and the traffic). Debian's chromium is
// used as it is installed: Playwright downloads no browser.
//
// Environment (all set by the pytest side):
//   JN_DASH_URL         the admin listener, e.g. http://127.0.0.1:9901/
//   JN_DASH_TOKEN       the admin token
//   JN_DASH_KILL        address of the server the pytest side kills when asked
//   JN_DASH_KILL_FILE   file this script writes to ask for that kill
//   JN_DASH_DRAIN       address of the server this script drains with the button
//   JN_DASH_SCREENSHOT  where to save the screenshot (PNG)
// Prints a last line "RESULT {json}" and exits 0 when every step passed, or
// prints "FAILED at step: ..." (and saves the screenshot anyway) and exits 1.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) { console.error(`dashboard.mjs: ${name} is not set`); process.exit(2); }
  return v;
};
const URL_ = env('JN_DASH_URL'), TOKEN = env('JN_DASH_TOKEN');
const KILL = env('JN_DASH_KILL'), KILL_FILE = env('JN_DASH_KILL_FILE');
const DRAIN = env('JN_DASH_DRAIN'), SHOT = env('JN_DASH_SCREENSHOT');
const WAIT = 20000;   // bound of each wait: only a broken run reaches it

// Whatever happens, the script ends by itself.
setTimeout(() => { console.error('FAILED: the whole run took over 120 s'); process.exit(1); }, 120000).unref();

let step = 'start';
const result = { drain: null };
const row = (addr) => `tr[data-server="${addr}"]`;

async function run(page) {
  step = 'open the page: the sign-in form shows';
  await page.goto(URL_, { timeout: WAIT });
  await page.locator('#token-input').waitFor({ state: 'visible', timeout: WAIT });

  step = 'a wrong token is refused with a message';
  await page.fill('#token-input', TOKEN + '-wrong');
  await page.click('#login-submit');
  await page.locator('#login-error').waitFor({ state: 'visible', timeout: WAIT });
  const refused = await page.textContent('#login-error');
  if (!/refused/i.test(refused)) throw new Error(`unexpected sign-in message: ${refused}`);

  step = 'the right token opens the dashboard with status and both servers healthy';
  await page.fill('#token-input', TOKEN);
  await page.click('#login-submit');
  await page.locator(`${row(KILL)}[data-health="healthy"]`).waitFor({ timeout: WAIT });
  await page.locator(`${row(DRAIN)}[data-health="healthy"]`).waitFor({ timeout: WAIT });
  const version = (await page.textContent('#status-version')).trim();
  if (!version || version === '–') throw new Error('the header shows no version');
  await page.locator('tr[data-route]').first().waitFor({ timeout: WAIT });

  step = `a killed server (${KILL}) shows unhealthy`;
  writeFileSync(KILL_FILE, KILL + '\n');
  await page.locator(`${row(KILL)}[data-health="unhealthy"]`).waitFor({ timeout: WAIT });
  const killedBadge = await page.textContent(`${row(KILL)} [data-cell="health"]`);
  if (!/unhealthy/.test(killedBadge)) throw new Error(`the killed server's badge says ${killedBadge}`);

  step = `the Drain button drains ${DRAIN}`;
  await page.click(`${row(DRAIN)} button[data-action="drain"]`);
  await page.locator(`${row(DRAIN)}[data-state="draining"], ${row(DRAIN)} .result.err`)
    .first().waitFor({ timeout: WAIT });
  const said = await page.textContent(`${row(DRAIN)} [data-result]`);
  if (/HTTP 501/.test(said)) {
    // Runtime changes not available in this build yet (jn_runtime_change stub).
    result.drain = 'skipped: PATCH answered 501: ' + said;
  } else {
    if ((await page.getAttribute(row(DRAIN), 'data-state')) !== 'draining') {
      throw new Error(`the page did not show the server draining; it says: ${said}`);
    }
    await page.locator(`${row(DRAIN)} button[data-action="restore"]`).waitFor({ timeout: WAIT });
    step = 'GET /upstreams confirms the drain';
    const res = await fetch(new URL('upstreams', URL_), { headers: { Authorization: `Bearer ${TOKEN}` } });
    if (res.status !== 200) throw new Error(`GET /upstreams answered ${res.status}`);
    const servers = (await res.json()).upstreams.flatMap((u) => u.servers);
    const srv = servers.find((s) => s.address === DRAIN);
    if (!srv || srv.drain !== true) throw new Error(`the API says ${JSON.stringify(srv)}`);
    result.drain = 'done';
  }

  step = 'the charts got data while traffic flows';
  await page.waitForFunction(() => {
    const c = document.getElementById('chart-rps');
    return Number(c.dataset.points) >= 2 && Number(c.dataset.last) > 0;
  }, null, { timeout: WAIT });
  await page.waitForFunction(() => Number(document.getElementById('chart-latency').dataset.points) >= 1,
                             null, { timeout: WAIT });
  result.rps = Number(await page.getAttribute('#chart-rps', 'data-last'));
  result.p50 = (await page.textContent('#value-p50')).trim();
  const routeRps = await page.textContent('tr[data-route] [data-cell="rps"]');
  if (!(Number(routeRps) > 0)) throw new Error(`the route shows ${routeRps} requests/s`);

  step = 'the page says it is live';
  const live = await page.textContent('#last-updated');
  if (!/last updated/i.test(live)) throw new Error(`the live indicator says ${live}`);
  if (await page.isVisible('#api-error')) throw new Error(`an error shows: ${await page.textContent('#api-error')}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // A container has no user namespaces for the sandbox, no GPU, and a small /dev/shm.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: WAIT,
});
let failed = null;
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.on('pageerror', (e) => { failed = failed || new Error('page script error: ' + e.message); });
try {
  await run(page);
  if (failed) throw failed;
} catch (e) {
  failed = e;
}
mkdirSync(dirname(SHOT), { recursive: true });
await page.screenshot({ path: SHOT, fullPage: true }).catch((e) => console.error('screenshot:', e.message));
await browser.close();
if (failed) {
  console.error(`FAILED at step: ${step}: ${failed.message.split('\n')[0]} (screenshot: ${SHOT})`);
  process.exit(1);
}
console.log('RESULT ' + JSON.stringify(result));

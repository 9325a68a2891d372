// Checks a running Switchboard (e.g. scripts/cluster.sh: several servers behind nginx) in headless
// Chromium, as a user would: two people sign up, one makes a room, the other joins; chat goes
// over each of the four transports in turn (switched from the room header), then the race page
// receives one burst over all four at once. Screenshots go to SHOTS (default /tmp/cluster-shots).
//
//   (cd end2end && npm ci)      # once: playwright-core, with Debian's /usr/bin/chromium
//   node scripts/cluster-browser.mjs http://127.0.0.1:8080
//
// Exits non-zero on the first thing that does not happen within its time limit.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'end2end', 'package.json'));
const { chromium } = require('playwright-core');

const BASE = process.argv[2] ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.SHOTS ?? '/tmp/cluster-shots';
fs.mkdirSync(SHOTS, { recursive: true });
const run = Date.now().toString(36).slice(-6);
const PASSWORD = 'correct horse battery';
const T = (id) => `[data-testid="${id}"]`;
const TIMEOUT = 20_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const failures = [];
const log = (...a) => console.log(...a);

async function hasText(page, selector, text) {
  await page.waitForFunction(
    ([s, t]) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)),
    [selector, text],
    { timeout: TIMEOUT },
  );
}

async function signUp(name) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push(`[${name}] page error: ${e}`));
  // What the browser saw on the network: live requests through nginx and their answers.
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/api/')) return;
    // 403 is the origin policy refusing (a proxy misconfiguration); 5xx a server or nginx error.
    if ((r.status() === 403 && !u.pathname.startsWith('/api/admin/')) || r.status() >= 500) failures.push(`[${name}] ${r.status()} ${u.pathname}`);
    else if (r.status() >= 400) log(`  [${name}] ${r.status()} ${u.pathname}`);
  });
  page.on('websocket', (ws) => log(`  [${name}] WebSocket opened ${new URL(ws.url()).pathname}`));
  await page.goto('/signup');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: TIMEOUT });
  await page.fill('#username', name);
  await page.fill('#password', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname === '/', { timeout: TIMEOUT });
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: TIMEOUT });
  await hasText(page, T('connection'), '· live');
  return page;
}

async function say(page, text) {
  await page.fill(T('composer'), text);
  await page.press(T('composer'), 'Enter');
}

async function lastBodyIs(page, text) {
  await page.waitForFunction(
    ([s, t]) => {
      const all = document.querySelectorAll(s);
      return all.length > 0 && all[all.length - 1].textContent === t;
    },
    [T('message-body'), text],
    { timeout: TIMEOUT },
  );
}

try {
  const alice = await signUp(`ann${run}`);
  const bob = await signUp(`ben${run}`);
  log(`signed up ann${run} and ben${run} through ${BASE}`);
  const room = `cluster-${run}`;
  await alice.fill(T('new-room-name'), room);
  await alice.click(T('new-room-submit'));
  await hasText(alice, T('room-title'), room);
  await bob.reload();
  await bob.waitForSelector('body[data-hydrated="true"]', { timeout: TIMEOUT });
  await bob.locator(T('room-list')).getByText(`# ${room}`).click();
  await bob.click(T('join-room'));
  log(`room ${room} made by ann, joined by ben`);

  const labels = { websocket: 'WebSocket', sse: 'SSE', long_poll: 'long polling', short_poll: 'short polling' };
  for (const [transport, label] of Object.entries(labels)) {
    await bob.selectOption(T('transport-chat'), transport);
    await hasText(bob, T('connection'), `Chat: ${label} · live`);
    const a = `to ben over ${transport}`;
    await say(alice, a);
    await lastBodyIs(bob, a);
    const b = `from ben over ${transport}`;
    await say(bob, b);
    await lastBodyIs(alice, b);
    await bob.screenshot({ path: path.join(SHOTS, `chat-${transport}.png`) });
    log(`chat over ${label}: both ways ok`);
  }
  await bob.selectOption(T('transport-chat'), 'websocket');
  await hasText(bob, T('connection'), 'Chat: WebSocket · live');
  await alice.screenshot({ path: path.join(SHOTS, 'chat-alice.png') });

  // All four at once: the race page opens one connection per transport.
  await bob.click(T('race-link'));
  await bob.waitForSelector(T('race-page'), { timeout: TIMEOUT });
  for (const t of Object.keys(labels)) await hasText(bob, `${T(`lane-${t}`)} p`, 'live');
  await bob.selectOption(T('race-room'), { label: room });
  await bob.click(T('race-burst'));
  for (const t of Object.keys(labels)) {
    await hasText(bob, `${T(`lane-${t}`)} ${T('arrival')}`, 'race 10/10');
  }
  await bob.screenshot({ path: path.join(SHOTS, 'race-all-four.png'), fullPage: true });
  log('race page: a burst of 10 arrived on all four transports');

  // Which servers answered (when the first account of the database is ours, it is an admin).
  const metrics = await alice.evaluate(async () => {
    const r = await fetch('/api/admin/metrics');
    return r.ok ? (await r.json()).cluster ?? null : `not admin (${r.status})`;
  });
  log('cluster (admin metrics, answered by one server):', JSON.stringify(metrics));
} catch (e) {
  failures.push(String(e));
} finally {
  await browser.close();
}
if (failures.length) {
  console.error('FAILED:\n  ' + failures.join('\n  '));
  process.exit(1);
}
log(`all good; screenshots in ${SHOTS}`);

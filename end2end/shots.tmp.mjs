// Throwaway: screenshots of a lively room (light, dark, phone). Usage: node shots.tmp.mjs <base> <outdir>
import { chromium } from 'playwright';
const [base, out] = process.argv.slice(2);
const run = Date.now().toString(36).slice(-5);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
async function person(name, opts = {}) {
  const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 }, ...opts });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(name, e));
  await page.goto('/signup');
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.fill('#username', name);
  await page.fill('#password', 'correct horse battery');
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname === '/');
  await page.waitForSelector('body[data-hydrated="true"]');
  return page;
}
const api = (page, method, url, body) => page.evaluate(async ([m, u, b]) => {
  const r = await fetch(u, { method: m, headers: { 'Content-Type': 'application/json' }, body: b ? JSON.stringify(b) : undefined });
  return r.status === 204 ? null : r.json();
}, [method, url, body]);
const alice = await person(`alice${run}`);
const bob = await person(`bob${run}`);
const room = await api(alice, 'POST', '/api/rooms', { name: `design-${run}` });
await api(bob, 'POST', `/api/rooms/${room.id}/join`);
const say = (p, body, reply_to) => api(p, 'POST', `/api/rooms/${room.id}/messages`, { body, client_id: `c${Math.random()}`, reply_to });
const m1 = await say(alice, 'Morning! The **release notes** are up: https://example.com/releases/2.0');
await say(bob, 'Nice. Two things I noticed:\n- the `--port` flag is missing from the table\n- the *upgrade* section links to [the old docs](https://example.com/v1)');
const m3 = await say(alice, '> the upgrade section links to the old docs\n\nGood catch, fixing now.');
await say(bob, 'Here is the snippet I used:\n```\nswitchboard --addr 127.0.0.1:3000 \\\n  --database-url sqlite://data.db\n```');
await say(bob, 'Shipping it 🎉', m1.id);
await say(alice, 'Thanks @bob' + run + ', merged.', m1.id);
const m7 = await say(alice, 'Lunch at 12:30? [menu](javascript:alert(1)) <b>not bold</b>');
await api(alice, 'PATCH', `/api/rooms/${room.id}/messages/${m3.id}`, { body: '> the upgrade section links to the old docs\n\nGood catch, fixed.' });
for (const [p, e, m] of [[bob, '👍', m1], [alice, '🎉', m1], [bob, '🎉', m1], [bob, '❤️', m3], [alice, '👀', m7]]) {
  await api(p, 'PUT', `/api/rooms/${room.id}/messages/${m.id}/reactions/${encodeURIComponent(e)}`);
}
const dead = await say(bob, 'oops, wrong room');
await api(bob, 'DELETE', `/api/rooms/${room.id}/messages/${dead.id}`);
for (const [name, opts] of [['light', {}], ['dark', { colorScheme: 'dark' }], ['phone', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }]]) {
  const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 }, ...opts, storageState: await bob.context().storageState() });
  const page = await ctx.newPage();
  await page.goto(`/rooms/${room.id}`);
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.waitForSelector('[data-testid="thread-open"]');
  if (name !== 'phone') {
    await page.locator('[data-testid="thread-open"]').first().click();
    await page.waitForSelector('[data-testid="thread-panel"] [data-testid="message-body"] >> nth=2');
  }
  const last = page.locator('.messages [data-testid="message"]').filter({ hasText: 'Lunch' });
  await last.hover();
  await page.screenshot({ path: `${out}/life-${name}.png` });
  if (name === 'phone') {
    await last.locator('[data-testid="message-react"]').click();
    await page.screenshot({ path: `${out}/life-${name}-picker.png` });
    await page.keyboard.press('Escape');
    await page.locator('[data-testid="thread-open"]').first().click();
    await page.waitForSelector('[data-testid="thread-panel"] [data-testid="message-body"] >> nth=2');
    await page.screenshot({ path: `${out}/life-${name}-thread.png` });
  } else {
    await page.locator('[data-testid="composer"]').pressSequentially('see you :ta');
    await page.screenshot({ path: `${out}/life-${name}-complete.png` });
  }
  await ctx.close();
}
await browser.close();

// Hostile markup in every place people can type it (message bodies, room names, announcement
// titles and bodies; usernames refuse it) shows as text in the chat view, the room list, the
// notification feed, toasts and the admin console, and no script runs. The page runs under its
// Content-Security-Policy: hydration works, no violation is reported, and an injected inline
// handler is blocked by the policy.
import { test, expect, type Page } from '@playwright/test';
import { hydrated, signIn, run, shot } from './helpers';
import { ADMIN } from '../global-setup';
import { T, id } from './testids';

// Each payload would set window.__xss if it ever became markup.
const ROOM = `<img src=x onerror="window.__xss='room'">${run}`;
const BODY = `<script>window.__xss='script'</script><img src=x onerror="window.__xss='img'">`;
const TITLE = `<svg onload="window.__xss='title'"></svg>${run}`;
const NOTE = `<iframe srcdoc="<script>parent.__xss='note'</script>"></iframe>`;

/** Records what the page reports: CSP violations (DOM event and console) and errors. */
function watch(page: Page) {
  const seen = { csp: [] as string[], errors: [] as string[] };
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.csp.push(m.text());
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('dialog', (d) => {
    seen.errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  return seen;
}

/** Nothing ran: no flag, no element made from a payload anywhere in the document. */
async function noScriptRan(page: Page) {
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  await expect(page.locator('img[src="x"], svg[onload], iframe[srcdoc]')).toHaveCount(0);
  // The page's own data script holds the payloads too, as JSON with `<` escaped (\u003c), so it
  // cannot close its script early; no script element is a payload, or holds one raw.
  const scripts = await page.evaluate(() => [...document.querySelectorAll('script')].map((s) => s.textContent ?? ''));
  expect(scripts.filter((t) => t.trim().startsWith('window.__xss') || /<(script|img|svg|iframe)\b/i.test(t))).toEqual([]);
}

test('markup in names, messages and notifications is text everywhere, under the CSP', async ({ browser }) => {
  const ann = await signIn(browser, `xssann${run}`);
  const ben = await signIn(browser, `xssben${run}`);
  const annSeen = watch(ann);
  const benSeen = watch(ben);

  // Usernames cannot carry markup at all: the server refuses them.
  const refused = await ann.evaluate(async () => {
    const r = await fetch('/api/auth/signup', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: '<b onmouseover=alert(1)>x</b>', password: 'correct horse battery' }),
    });
    return [r.status, (await r.json()).error.code];
  });
  expect(refused).toEqual([400, 'invalid_username']);

  // A room whose name is markup: the title and the room list show it as text.
  await ann.fill(id(T.newRoomName), ROOM);
  await ann.click(id(T.newRoomSubmit));
  await expect(ann.locator(id(T.roomTitle))).toHaveText(`# ${ROOM}`);
  await expect(ann.locator(id(T.roomList))).toContainText(ROOM);

  // Ben finds it in the list (server-rendered after a reload, then hydrated) and joins.
  await ben.reload();
  await hydrated(ben);
  await ben.locator(id(T.roomList)).getByText(`# ${ROOM}`).click();
  await ben.click(id(T.joinRoom));
  await expect(ben.locator(id(T.composer))).toBeVisible();

  // A message of markup that mentions Ben: his chat view and his notification feed.
  await ann.fill(id(T.composer), `${BODY} @xssben${run}`);
  await ann.press(id(T.composer), 'Enter');
  await expect(ben.locator(id(T.messageBody)).last()).toHaveText(`${BODY} @xssben${run}`);
  await expect(ann.locator(id(T.messageBody)).last()).toHaveText(`${BODY} @xssben${run}`);
  // (Ben is looking at the room, so the mention is read as it lands: it is in the panel all the
  // same.)
  await ben.click('[data-testid="bell"]');
  const mention = ben.locator('[data-testid="notification"]').first();
  await expect(mention).toContainText(ROOM);
  await expect(mention).toContainText(`<script>window.__xss='script'</script>`);

  // Server rendering of the same: a fresh load of the room shows the text again.
  await ben.reload();
  await hydrated(ben);
  await expect(ben.locator(id(T.messageBody)).last()).toHaveText(`${BODY} @xssben${run}`);
  await expect(ben.locator(id(T.roomTitle))).toHaveText(`# ${ROOM}`);

  // An announcement of markup: Ben's toast and feed, and the admin console's audit log.
  const admin = await signIn(browser, ADMIN, false);
  const adminSeen = watch(admin);
  await admin.click('[data-testid="admin-link"]');
  await expect(admin.locator('[data-testid="admin-page"]')).toBeVisible();
  await admin.fill('input[aria-label="Announcement title"]', TITLE);
  await admin.fill('textarea[aria-label="Announcement text"]', NOTE);
  await admin.click('form:has(input[aria-label="Announcement title"]) button[type="submit"]');
  await expect(ben.locator('[data-testid="toast"]').last()).toContainText(TITLE);
  await ben.click('[data-testid="bell"]');
  const panel = ben.locator('[data-testid="notification-panel"]');
  if (!(await panel.isVisible())) await ben.click('[data-testid="bell"]');
  await expect(panel).toContainText(TITLE);
  await expect(panel).toContainText(NOTE);
  await admin.reload();
  await hydrated(admin);
  await expect(admin.locator('[data-testid="audit-log"]')).toContainText(`svg onload`);
  await expect(admin.locator('[data-testid="admin-users"]')).toContainText(`xssann${run}`);

  for (const p of [ann, ben, admin]) await noScriptRan(p);
  await shot(ben, 'xss-chat-and-feed.png');
  await admin.locator('[data-testid="audit-log"]').scrollIntoViewIfNeeded();
  await shot(admin, 'xss-admin-console.png');

  // The pages hydrated and ran their wasm under the policy without a single violation.
  for (const [who, seen] of [['ann', annSeen], ['ben', benSeen], ['admin', adminSeen]] as const) {
    expect(seen.csp, `${who}: CSP violations`).toEqual([]);
    expect(seen.errors, `${who}: page errors`).toEqual([]);
  }
  const csp = await ben.evaluate(async () => (await fetch('/')).headers.get('content-security-policy'));
  expect(csp).toContain("script-src 'self' 'nonce-");

  // Defence in depth: markup injected past the UI still cannot run inline code.
  const blocked = await ben.evaluate(() => new Promise<string>((resolve) => {
    document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true });
    const d = document.createElement('div');
    d.innerHTML = `<img src="/favicon.ico" onload="window.__xss='csp'">`;
    document.body.appendChild(d);
  }));
  expect(blocked).toMatch(/^script-src/);
  expect(await ben.evaluate(() => (window as any).__xss)).toBeUndefined();
});

// Accessibility (issue 18, 12): axe-core finds no serious or critical violation on the sign-in,
// room, jobs, race and admin pages (and the panels they open), light and dark; a skip link
// reaches the composer; every <time datetime> holds ISO 8601.
import { test, expect, type Browser, type Page } from '@playwright/test';
import { hydrated, PASSWORD, run, shot } from './helpers';
import { ADMIN } from '../global-setup';
import { T, id } from './testids';

const SCHEMES = ['light', 'dark'] as const;

/** A page whose context lets the test inject axe-core past the page's Content-Security-Policy. */
async function openPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  return page;
}

/** Runs axe-core on the page as it is, in both colour schemes; fails listing every serious or
 * critical violation readably. */
async function axe(page: Page, label: string) {
  const failures: string[] = [];
  for (const scheme of SCHEMES) {
    await page.emulateMedia({ colorScheme: scheme });
    if (!(await page.evaluate(() => 'axe' in window))) {
      await page.addScriptTag({ path: require.resolve('axe-core') });
    }
    const violations: any[] = await page.evaluate(async () => {
      const r = await (window as any).axe.run(document, { resultTypes: ['violations'] });
      return r.violations;
    });
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    console.log(
      `${label} (${scheme}): ${violations.length} violations, ${bad.length} serious or critical` +
        (violations.length ? ` [${violations.map((v) => `${v.id}:${v.impact}`).join(', ')}]` : ''),
    );
    for (const v of bad) {
      const nodes = v.nodes
        .slice(0, 8)
        .map((n: any) => `    at ${n.target.join(' ')}\n      ${String(n.failureSummary).replace(/\n/g, '\n      ')}`)
        .join('\n');
      failures.push(`${label} (${scheme}): ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)\n${nodes}`);
    }
  }
  await page.emulateMedia({ colorScheme: null });
  expect(failures.join('\n\n'), 'serious or critical axe-core violations').toBe('');
}

/** Every <time datetime> on the page holds an ISO 8601 date and time that parses. */
async function expectIsoTimes(page: Page) {
  const values = await page.locator('time').evaluateAll((els) => els.map((e) => e.getAttribute('datetime')));
  expect(values.length).toBeGreaterThan(0);
  for (const v of values) {
    expect(v).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/);
    const t = Date.parse(v!);
    expect(Math.abs(Date.now() - t)).toBeLessThan(24 * 3600 * 1000);
  }
}

test('the sign-in and sign-up pages have no serious accessibility violations', async ({ browser }) => {
  const page = await openPage(browser);
  for (const path of ['/login', '/signup']) {
    await page.goto(path);
    await hydrated(page);
    await axe(page, path);
  }
  // A failed sign-in's error too.
  await page.goto('/login');
  await hydrated(page);
  await page.fill('#username', `nobody${run}`);
  await page.fill('#password', 'wrong password');
  await page.click('button[type="submit"]');
  await expect(page.locator(id(T.authError))).toBeVisible();
  await axe(page, '/login with an error');
});

test('room, jobs, race and admin pages have no serious accessibility violations, light and dark', async ({ browser, baseURL }) => {
  const page = await openPage(browser);
  await page.goto('/login');
  await hydrated(page);
  await page.fill('#username', ADMIN);
  await page.fill('#password', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname === '/');
  await hydrated(page);
  await expect(page.locator(id(T.connection))).toContainText('· live');
  await axe(page, 'home');

  // A room with messages (a day divider above them).
  await page.fill(id(T.newRoomName), `a11y-${run}`);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toHaveText(`# a11y-${run}`);
  for (const text of ['first message', 'second message, @nobody mentioned', 'third']) {
    await page.fill(id(T.composer), text);
    await page.press(id(T.composer), 'Enter');
  }
  await expect(page.locator(`${id(T.message)}:not(.pending)`)).toHaveCount(3);
  await expect(page.locator('.log .day')).toHaveCount(1);
  await expectIsoTimes(page);
  await axe(page, 'room');

  // A skip link is the first stop of Tab and reaches the composer.
  const roomUrl = page.url();
  await page.goto(roomUrl);
  await hydrated(page);
  let tabs = 0;
  while (tabs < 3 && !(await page.locator(id(T.composer)).evaluate((e) => e === document.activeElement))) {
    await page.keyboard.press('Tab');
    tabs++;
    if (tabs === 1) {
      await expect(page.locator(id(T.skipLink))).toBeFocused();
      await expect(page.locator(id(T.skipLink))).toHaveText('Skip to composer');
      await shot(page, 'skip-link.png');
      await page.keyboard.press('Enter');
    }
  }
  console.log(`composer focused after ${tabs} Tab press(es) and Enter`);
  await expect(page.locator(id(T.composer))).toBeFocused();
  await page.keyboard.type('typed after the skip link');
  await expect(page.locator(id(T.composer))).toHaveValue('typed after the skip link');
  await page.fill(id(T.composer), '');
  // Without a composer (the jobs page) it skips to the page's content.
  await page.goto('/jobs');
  await hydrated(page);
  await page.keyboard.press('Tab');
  await expect(page.locator(id(T.skipLink))).toBeFocused();
  await expect(page.locator(id(T.skipLink))).toHaveText('Skip to content');
  await page.keyboard.press('Enter');
  await expect(page.locator('main#main')).toBeFocused();
  await page.goto(roomUrl);
  await hydrated(page);

  // The panels the header and the room header open.
  await page.click('[data-testid="open-settings"]');
  await expect(page.locator('[data-testid="transport-settings"]')).toBeVisible();
  await axe(page, 'room with the Transports drawer');
  await page.keyboard.press('Escape');
  await page.click('[data-testid="bell"]');
  await expect(page.locator('[data-testid="notification-panel"]')).toBeVisible();
  await axe(page, 'room with the notifications panel');
  await page.keyboard.press('Escape');
  await page.click('[data-testid="inspector-chat"] summary');
  await expect(page.locator('[data-testid="inspector-readout-chat"]')).toBeVisible();
  await axe(page, 'room with the inspector');
  await page.keyboard.press('Escape');

  // Jobs, with a job running.
  const r = await page.request.post('/api/jobs', {
    headers: { origin: baseURL! },
    data: { kind: 'demo', steps: 40, step_ms: 500 },
  });
  expect(r.status(), await r.text()).toBe(202);
  await page.click('[data-testid="jobs-link"]');
  await expect(page.locator('[data-testid="job"]').first()).toBeVisible();
  await axe(page, 'jobs');

  await page.click('[data-testid="race-link"]');
  await expect(page.locator('[data-testid="race-page"]')).toBeVisible();
  await axe(page, 'race');

  // Something in the audit log (with its time): clearing an override I do not have.
  const me = await (await page.request.get('/api/me')).json();
  const cleared = await page.request.put(`/api/admin/users/${me.id}/transports`, {
    headers: { origin: baseURL! },
    data: { jobs: null },
  });
  expect(cleared.status(), await cleared.text()).toBe(200);
  await page.click('[data-testid="admin-link"]');
  await expect(page.locator('[data-testid="metrics-feed-state"]')).toContainText('pushed every second');
  await expect(page.locator('[data-testid="audit-log"] li').first()).toBeVisible();
  await expectIsoTimes(page);
  await axe(page, 'admin');

  // How the pages look, desktop and phone, light and dark.
  // Loaded straight from their address (a reload of /race used to say "You are signed out").
  const pages = [
    ['room', new URL(roomUrl).pathname, id(T.roomTitle)],
    ['jobs', '/jobs', '[data-testid="jobs-page"]'],
    ['race', '/race', '[data-testid="race-page"]'],
    ['admin', '/admin', '[data-testid="admin-page"]'],
  ];
  for (const [name, path, shown] of pages) {
    for (const size of [{ n: 'desktop', width: 1280, height: 800 }, { n: 'phone', width: 390, height: 844 }]) {
      await page.setViewportSize({ width: size.width, height: size.height });
      for (const scheme of SCHEMES) {
        await page.emulateMedia({ colorScheme: scheme });
        await page.goto(path);
        await hydrated(page);
        await expect(page.locator(shown)).toBeVisible();
        await expect(page.locator('h1')).toHaveCount(1);
        // The page scrolls inside, never as a whole.
        const h = await page.evaluate(() => [document.documentElement.scrollHeight, window.innerHeight]);
        expect(h[0], `${name} ${size.n}: document height`).toBeLessThanOrEqual(h[1]);
        await shot(page, `a11y-${name}-${size.n}-${scheme}.png`);
      }
    }
  }
});

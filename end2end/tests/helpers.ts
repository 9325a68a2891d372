// Shared steps of the browser tests: waiting for hydration, signing up or in, screenshots.
import { expect, type Browser, type BrowserContextOptions, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SHOTS = path.join(__dirname, '..', 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

export const PASSWORD = 'correct horse battery';

/** A suffix unique to this run, so the suite can run again against the same database. */
export const run = Date.now().toString(36).slice(-6);

/** Waits until the page is hydrated: before that, a click does nothing. */
export async function hydrated(page: Page) {
  await page.waitForSelector('body[data-hydrated="true"]');
}

/** A new browser context signed up (or in) as `name`, on the chat screen, live; on the suite's
 * server, or on `base` (a server a test started itself); `options` for the context (a phone). */
export async function signIn(
  browser: Browser,
  name: string,
  signup = true,
  base?: string,
  options: BrowserContextOptions = {},
): Promise<Page> {
  const context = await browser.newContext(base ? { ...options, baseURL: base } : options);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] page error:`, e));
  await page.goto(signup ? '/signup' : '/login');
  await hydrated(page);
  await page.fill('#username', name);
  await page.fill('#password', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname === '/');
  await hydrated(page);
  // The chat feed is live before the test goes on.
  await expect(page.locator('[data-testid="connection"]')).toContainText('· live');
  return page;
}

export function shot(page: Page, name: string) {
  return page.screenshot({ path: path.join(SHOTS, name) });
}

// After an outage, chat comes back on its preferred transport as soon as the server answers; a
// WebSocket that fails while the server answers moves chat to a fallback, and the banner and
// picker say what is really in use.
import { test, expect, type Page } from '@playwright/test';
import { hydrated, signIn, run, PASSWORD, SHOTS } from './helpers';
import { OwnServer, signInAt } from './outage';
import * as path from 'node:path';
import { T, id } from './testids';

/** Records every change of the connection banner's text with the page's clock (ms). */
async function watchBanner(page: Page) {
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="connection"]')!;
    const log: [number, string][] = [[Date.now(), el.textContent ?? '']];
    (window as any).__banner = log;
    new MutationObserver(() => log.push([Date.now(), el.textContent ?? ''])).observe(el, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  });
}

/** The first moment at or after `since` the banner read something matching `re`. */
async function firstAfter(page: Page, since: number, re: RegExp): Promise<number> {
  const log: [number, string][] = await page.evaluate(() => (window as any).__banner);
  const hit = log.find(([t, text]) => t >= since && re.test(text));
  if (!hit) throw new Error(`the banner never read ${re} after ${since}: ${JSON.stringify(log.slice(-5))}`);
  return hit[0];
}

test('after a 3 s and a 10 s outage chat is live again at once, on WebSocket (time printed)', async ({ browser }) => {
  test.setTimeout(120_000);
  const server = await OwnServer.start();
  try {
    const page = await signInAt(browser, server.url, 'olga');
    const banner = page.locator(id(T.connection));
    await expect(banner).toHaveText('Chat: WebSocket · live');
    await watchBanner(page);
    const figures: string[] = [];
    for (const seconds of [3, 10]) {
      const stopped = Date.now();
      await server.down();
      await expect(banner).toContainText('reconnecting');
      // The outage itself: the length under test, not a wait for something.
      await page.waitForTimeout(Math.max(0, seconds * 1000 - (Date.now() - stopped)));
      // The server being away is not the WebSocket failing: chat stays on it, retrying.
      await expect(banner).toHaveAttribute('data-transport', 'websocket');
      await expect(banner).toContainText('Chat: WebSocket · reconnecting');
      const spawned = Date.now();
      const answering = await server.up();
      await expect(banner).toHaveText('Chat: WebSocket · live');
      const live = await firstAfter(page, spawned, /· live/);
      const onWs = await firstAfter(page, spawned, /^Chat: WebSocket · live/);
      figures.push(
        `outage ${seconds} s: server answered ${answering - spawned} ms after its start; chat live ${live - answering} ms after that, on WebSocket ${onWs - answering} ms after`,
      );
    }
    for (const f of figures) console.log(f);
    await page.screenshot({ path: path.join(SHOTS, 'outage-back.png') });
  } finally {
    await server.close();
  }
});

test('a WebSocket that fails while the server answers moves chat to SSE for now, and the banner and picker say so', async ({ browser }) => {
  // A middlebox that drops every WebSocket upgrade; plain HTTP passes.
  const context = await browser.newContext();
  await context.routeWebSocket(/\/api\/live\/ws/, (ws) => ws.close({ code: 1011, reason: 'blocked' }));
  const page = await context.newPage();
  await page.goto('/signup');
  await hydrated(page);
  await page.fill('#username', `wendy${run}`);
  await page.fill('#password', PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname === '/');
  await hydrated(page);
  const banner = page.locator(id(T.connection));
  await expect(banner).toHaveText('Chat: WebSocket — using SSE for now · live');
  await expect(banner).toHaveAttribute('data-transport', 'sse');

  const room = `fallback-now-${run}`;
  await page.fill(id(T.newRoomName), room);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  // The picker keeps the choice (WebSocket) and says what carries chat now.
  await expect(page.locator('[data-testid="transport-chat"]')).toHaveValue('websocket');
  await expect(page.locator('[data-testid="transport-chat-in-use"]')).toHaveText('using SSE for now');
  // Chat works on the fallback.
  await page.fill(id(T.composer), 'over SSE and HTTP');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody))).toHaveText(['over SSE and HTTP']);
  await expect(page.locator(id(T.sendStatus))).toHaveCount(0);
  await page.screenshot({ path: path.join(SHOTS, 'transports-for-now.png') });

  // A page whose WebSocket works says nothing of the kind.
  const other = await signIn(browser, `wanda${run}`);
  await expect(other.locator(id(T.connection))).toHaveText('Chat: WebSocket · live');
  await expect(other.locator('[data-testid="transport-chat-in-use"]')).toHaveCount(0);
});

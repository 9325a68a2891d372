// What Chromium actually sends on the app's own requests, which the server's origin policy relies
// on (docs/SECURITY.md): a same-origin EventSource and fetch GET carry no Origin but
// Sec-Fetch-Site: same-origin, a POST carries Origin. The app's live connections work under it.
import { test, expect, type Request } from '@playwright/test';
import { signIn, run } from './helpers';

test('same-origin requests carry the signals the origin policy accepts', async ({ browser, baseURL }) => {
  const page = await signIn(browser, `orig${run}`);
  const seen: Request[] = [];
  page.on('request', (r) => seen.push(r));
  // Notifications ride SSE by default: a reload opens a fresh EventSource.
  await page.reload();
  await expect(page.locator('[data-testid="connection"]')).toContainText('· live');
  await expect.poll(() => seen.some((r) => r.url().includes('/api/live/sse'))).toBe(true);
  const sse = seen.find((r) => r.url().includes('/api/live/sse'))!;
  const sseHeaders = await sse.allHeaders();
  expect(sseHeaders['sec-fetch-site']).toBe('same-origin');
  expect(sseHeaders['origin']).toBeUndefined();

  const [get] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith('/api/me')),
    page.evaluate(() => fetch('/api/me')),
  ]);
  const getHeaders = await get.allHeaders();
  expect(getHeaders['sec-fetch-site']).toBe('same-origin');
  expect(getHeaders['origin']).toBeUndefined();

  const [post] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith('/api/presence') && r.method() === 'POST'),
    page.evaluate(() =>
      fetch('/api/presence', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'online' }),
      }),
    ),
  ]);
  const postHeaders = await post.allHeaders();
  expect(postHeaders['origin']).toBe(new URL(baseURL!).origin);
  expect(postHeaders['sec-fetch-site']).toBe('same-origin');
});

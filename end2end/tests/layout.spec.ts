// The app frame fits the window: a long room never makes the page itself scroll (issue 18, 3),
// and the Transports drawer, the bell's panel and the inspectors sit over the page, close on
// Escape or a click outside, and give focus back to what opened them (issue 18, 8).
import { test, expect, type Page } from '@playwright/test';
import { hydrated, signIn, run, shot } from './helpers';
import { T, id } from './testids';

const SIZES = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

/** Creates a room as `page`'s user and returns its id. */
async function createRoom(page: Page, name: string): Promise<string> {
  await page.fill(id(T.newRoomName), name);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toHaveText(`# ${name}`);
  return new URL(page.url()).pathname.split('/')[2];
}

/** The document's and the body's scroll heights next to the window's height. */
async function heights(page: Page) {
  return page.evaluate(() => ({
    doc: document.documentElement.scrollHeight,
    body: document.body.scrollHeight,
    window: window.innerHeight,
  }));
}

test('with 150 messages the page is no taller than the window, desktop and phone', async ({ browser, baseURL }) => {
  const alice = await signIn(browser, `tall_a${run}`);
  const bob = await signIn(browser, `tall_b${run}`);
  const roomId = await createRoom(alice, `long-${run}`);
  const headers = { origin: baseURL! };
  expect((await bob.request.post(`/api/rooms/${roomId}/join`, { headers })).ok()).toBe(true);
  // Two authors taking turns: every message gets its own header with a presence dot.
  for (let i = 1; i <= 150; i++) {
    const who = i % 2 ? alice : bob;
    const r = await who.request.post(`/api/rooms/${roomId}/messages`, {
      headers,
      data: { body: `message ${i}`, client_id: `tall-${run}-${i}` },
    });
    expect(r.status(), await r.text()).toBe(201);
  }

  for (const size of SIZES) {
    await alice.setViewportSize({ width: size.width, height: size.height });
    await alice.goto(`/rooms/${roomId}`);
    await hydrated(alice);
    await expect(alice.locator(id(T.messageBody)).last()).toHaveText('message 150');
    // All 150 in the list: two pages of older ones.
    for (const n of [100, 150]) {
      await alice.click(id(T.loadOlder));
      await expect(alice.locator(id(T.message))).toHaveCount(n);
    }
    const h = await heights(alice);
    console.log(`${size.name}: document ${h.doc} px, body ${h.body} px, window ${h.window} px`);
    expect(h.doc).toBeLessThanOrEqual(h.window);
    expect(h.body).toBeLessThanOrEqual(h.window);
    // The wheel over the room list (desktop) or the messages (phone) never scrolls the app away.
    const over = size.name === 'desktop' ? '.sidebar' : id(T.messages);
    await alice.locator(over).hover();
    await alice.mouse.wheel(0, 2000);
    await alice.mouse.wheel(0, -200);
    expect(await alice.evaluate(() => window.scrollY)).toBe(0);
    await shot(alice, `long-room-${size.name}.png`);

    // The room list on a phone, and the jobs page, fit as well.
    await alice.goto('/');
    await hydrated(alice);
    const list = await heights(alice);
    console.log(`${size.name} room list: document ${list.doc} px, window ${list.window} px`);
    expect(list.doc).toBeLessThanOrEqual(list.window);
  }
});

/** True when the focused element is inside (or is) the element `selector` finds. */
function focusInside(page: Page, selector: string) {
  return page.evaluate((s) => {
    const el = document.querySelector(s);
    return !!el && !!document.activeElement && el.contains(document.activeElement);
  }, selector);
}

test('panels open over the chat, close on Escape or a click outside, and give focus back', async ({ browser }) => {
  const page = await signIn(browser, `panels${run}`);
  const roomId = await createRoom(page, `panels-${run}`);
  await page.fill(id(T.composer), 'the chat keeps its size');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody)).last()).toHaveText('the chat keeps its size');
  const messages = page.locator(id(T.messages));
  const before = (await messages.boundingBox())!;

  // The Transports drawer, from the keyboard.
  const opener = page.locator('[data-testid="open-settings"]');
  const drawer = page.locator('[data-testid="transport-settings"]');
  await opener.focus();
  await page.keyboard.press('Enter');
  await expect(drawer).toBeVisible();
  await expect(opener).toHaveAttribute('aria-expanded', 'true');
  expect(await focusInside(page, '[data-testid="transport-settings"]')).toBe(true);
  // Beside the chat, not squeezing it: the message list keeps its place and size.
  const during = (await messages.boundingBox())!;
  console.log(`messages ${before.width}x${before.height} before, ${during.width}x${during.height} with the drawer open`);
  expect(during).toEqual(before);
  await shot(page, 'transports-drawer.png');
  await page.keyboard.press('Escape');
  await expect(drawer).toBeHidden();
  await expect(opener).toBeFocused();
  await expect(opener).toHaveAttribute('aria-expanded', 'false');
  // A click outside (on the message list) closes it too.
  await page.keyboard.press('Enter');
  await expect(drawer).toBeVisible();
  await page.mouse.click(before.x + 40, before.y + before.height / 2);
  await expect(drawer).toBeHidden();
  await expect(opener).toBeFocused();
  // And its × button.
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await expect(page.locator(id(T.closeSettings))).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(drawer).toBeHidden();
  await expect(opener).toBeFocused();

  // The bell's panel.
  const bell = page.locator('[data-testid="bell"]');
  const notes = page.locator('[data-testid="notification-panel"]');
  await bell.focus();
  await page.keyboard.press('Enter');
  await expect(notes).toBeVisible();
  expect(await focusInside(page, '[data-testid="notification-panel"]')).toBe(true);
  await page.keyboard.press('Escape');
  await expect(notes).toBeHidden();
  await expect(bell).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(notes).toBeVisible();
  await page.mouse.click(before.x + 40, before.y + before.height / 2);
  await expect(notes).toBeHidden();
  await expect(bell).toBeFocused();

  // An inspector inside the bell's panel: Escape closes the inspector first, then the panel.
  await page.keyboard.press('Enter');
  const inner = notes.locator('[data-testid="inspector-notifications"]');
  await inner.locator('summary').focus();
  await page.keyboard.press('Enter');
  await expect(inner.locator('[data-testid="inspector-readout-notifications"]')).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(inner.locator('[data-testid="inspector-readout-notifications"]')).toBeHidden();
  await expect(inner.locator('summary')).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(notes).toBeHidden();
  await expect(bell).toBeFocused();

  // The room header's inspector.
  const summary = page.locator('[data-testid="inspector-chat"] summary');
  const readout = page.locator('[data-testid="inspector-readout-chat"]');
  await summary.focus();
  await page.keyboard.press('Enter');
  await expect(readout).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(readout).toBeHidden();
  await expect(summary).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(readout).toBeVisible();
  await page.mouse.click(before.x + 40, before.y + before.height / 2);
  await expect(readout).toBeHidden();
  await expect(summary).toBeFocused();

  // The drawer on a phone, light and dark.
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const size of SIZES) {
      await page.setViewportSize({ width: size.width, height: size.height });
      await page.goto(`/rooms/${roomId}`);
      await hydrated(page);
      await page.click('[data-testid="open-settings"]');
      await expect(drawer).toBeVisible();
      await shot(page, `transports-drawer-${size.name}-${scheme}.png`);
      await page.keyboard.press('Escape');
      await expect(drawer).toBeHidden();
    }
  }
});

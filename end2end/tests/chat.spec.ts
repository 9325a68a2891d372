import { test, expect, type Page, type Browser } from '@playwright/test';
import { hydrated, signIn, run, PASSWORD, SHOTS } from './helpers';
import * as path from 'node:path';
import { T, id } from './testids';

test('the sign-in page renders and reports bad credentials inline', async ({ page }) => {
  await page.goto('/login');
  await expect(page.locator('h1')).toHaveText('Switchboard');
  await expect(page.locator('#username')).toHaveAttribute('autocomplete', 'username');
  await expect(page.locator('#password')).toHaveAttribute('autocomplete', 'current-password');
  await hydrated(page);
  await page.screenshot({ path: path.join(SHOTS, 'sign-in.png'), fullPage: true });
  await page.fill('#username', `nobody${run}`);
  await page.fill('#password', 'wrong password');
  await page.click('button[type="submit"]');
  await expect(page.locator(id(T.authError))).toHaveText(/wrong username or password/i);
  await expect(page).toHaveURL(/\/login$/);
});

test('two people chat in a room in real time, and markup stays text', async ({ browser }) => {
  const alice = await signIn(browser, `alice${run}`);
  const bob = await signIn(browser, `bob${run}`);

  // Alice creates a room.
  const roomName = `lobby-${run}`;
  await alice.fill(id(T.newRoomName), roomName);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# ${roomName}`);
  await expect(alice).toHaveURL(/\/rooms\//);

  // Bob finds it among the other rooms and joins.
  await bob.reload();
  await hydrated(bob);
  await bob.locator(id(T.roomList)).getByText(`# ${roomName}`).click();
  await expect(bob.locator(id(T.roomTitle))).toHaveText(`# ${roomName}`);
  await bob.click(id(T.joinRoom));
  await expect(bob.locator(id(T.composer))).toBeVisible();

  // Alice writes; Bob sees it without reloading.
  await alice.fill(id(T.composer), 'Hello Bob, this is Alice');
  await alice.press(id(T.composer), 'Enter');
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('Hello Bob, this is Alice');

  // Bob types: Alice sees it; then Bob answers and Alice sees that.
  await bob.locator(id(T.composer)).pressSequentially('Hi Alice!');
  await expect(alice.locator(id(T.typing))).toHaveText(/bob.* is typing/);
  await bob.click(id(T.send));
  await expect(alice.locator(id(T.messageBody)).last()).toHaveText('Hi Alice!');
  await expect(alice.locator(id(T.typing))).toHaveText('');
  // Bob is connected and his tab is in use: his dot says online.
  await expect(alice.locator('.msg [data-testid="presence"]').last()).toHaveClass(/\bonline\b/);

  // Markup is shown as text, never run.
  const script = '<script>window.__pwned = 1</script>';
  const img = '<img src=x onerror="window.__pwned = 2">';
  await alice.fill(id(T.composer), script);
  await alice.press(id(T.composer), 'Enter');
  await alice.fill(id(T.composer), img);
  await alice.press(id(T.composer), 'Enter');
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText(img);
  await expect(bob.locator(id(T.messageBody)).nth(-2)).toHaveText(script);
  expect(await bob.locator(`${id(T.messages)} img`).count()).toBe(0);
  expect(await bob.locator(`${id(T.messages)} script`).count()).toBe(0);
  expect(await bob.evaluate(() => (window as any).__pwned)).toBeUndefined();

  // Shift+Enter makes a new line instead of sending.
  await bob.fill(id(T.composer), 'line one');
  await bob.press(id(T.composer), 'Shift+Enter');
  await bob.type(id(T.composer), 'line two');
  await bob.press(id(T.composer), 'Enter');
  await expect(alice.locator(id(T.messageBody)).last()).toHaveText('line one\nline two');

  await alice.screenshot({ path: path.join(SHOTS, 'chat-alice.png') });
  await bob.screenshot({ path: path.join(SHOTS, 'chat-bob.png') });

  // A reload shows the same history from the server.
  await expect(bob).toHaveURL(/\/rooms\//);
  await bob.reload();
  await hydrated(bob);
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('line one\nline two');
  await expect(bob.locator(id(T.message))).toHaveCount(5);
});

test('a narrow screen shows one column', async ({ browser }) => {
  const page = await signIn(browser, `carol${run}`);
  await page.setViewportSize({ width: 390, height: 760 });
  await page.fill(id(T.newRoomName), `small-${run}`);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toBeVisible();
  await expect(page.locator(id(T.roomList))).toBeHidden();
  await page.fill(id(T.composer), 'Hello from a phone');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody)).last()).toHaveText('Hello from a phone');
  await page.screenshot({ path: path.join(SHOTS, 'chat-narrow.png') });
});

test('the chat screen reads before its wasm loads', async ({ browser }) => {
  const page = await signIn(browser, `dora${run}`);
  await page.fill(id(T.newRoomName), `static-${run}`);
  await page.click(id(T.newRoomSubmit));
  await page.fill(id(T.composer), 'Rendered on the server');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody)).last()).toHaveText('Rendered on the server');
  const url = page.url();
  const cookies = await page.context().cookies();
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  await noJs.addCookies(cookies);
  const plain = await noJs.newPage();
  await plain.goto(url);
  await expect(plain.locator(id(T.roomTitle))).toHaveText(`# static-${run}`);
  await expect(plain.locator(id(T.messageBody)).last()).toHaveText('Rendered on the server');
  await expect(plain.locator(id(T.roomList))).toContainText(`static-${run}`);
  await plain.screenshot({ path: path.join(SHOTS, 'chat-no-js.png') });
});

test('dark theme', async ({ browser }) => {
  const page = await signIn(browser, `erin${run}`);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.fill(id(T.newRoomName), `night-${run}`);
  await page.click(id(T.newRoomSubmit));
  await page.fill(id(T.composer), 'Good evening');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody)).last()).toHaveText('Good evening');
  await page.screenshot({ path: path.join(SHOTS, 'chat-dark.png') });
});

test('what someone types before the page is interactive is kept and sent', async ({ page }) => {
  // The wasm is held back until the form is filled in, so the typing happens before hydration.
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  await page.route('**/*.wasm', async (route) => {
    await gate;
    await route.continue();
  });
  const name = `early${run}`;
  await page.goto('/signup', { waitUntil: 'domcontentloaded' });
  await page.fill('#username', name);
  await page.fill('#password', PASSWORD);
  release();
  await hydrated(page);
  await expect(page.locator('#username')).toHaveValue(name);
  await expect(page.locator('#password')).toHaveValue(PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.pathname === '/');
  await expect(page.locator('.me')).toContainText(name);
});

// The outbox: what someone writes while the server is away waits in the browser, survives a
// reload and goes out by itself, once and in order; what the server refuses for good says why,
// with Retry and Discard. No raw error text ever reaches the screen.
import { test, expect, type Page } from '@playwright/test';
import { hydrated, signIn, run, SHOTS } from './helpers';
import { OwnServer, signInAt } from './outage';
import * as path from 'node:path';
import { T, id, transportPicker } from './testids';

/** What must never show: a JS error's name or stack, a wasm frame, a status code on its own. */
const RAW = /TypeError|Failed to fetch|JsValue|wasm-function|\.js:\d+|at \S+ \(|Unexpected answer/;

async function say(page: Page, text: string) {
  await page.fill(id(T.composer), text);
  await page.press(id(T.composer), 'Enter');
}

async function noRawErrors(page: Page) {
  expect(await page.locator('body').innerText()).not.toMatch(RAW);
}

test('messages written while the server is down wait, survive a reload and arrive once, in order, by themselves', async ({ browser }) => {
  test.setTimeout(120_000);
  const server = await OwnServer.start();
  try {
    const alice = await signInAt(browser, server.url, 'alice');
    const bob = await signInAt(browser, server.url, 'bob');
    await alice.fill(id(T.newRoomName), 'outbox');
    await alice.click(id(T.newRoomSubmit));
    await expect(alice.locator(id(T.roomTitle))).toHaveText('# outbox');
    const roomUrl = alice.url();
    await bob.goto(roomUrl);
    await hydrated(bob);
    await bob.click(id(T.joinRoom));
    await expect(bob.locator(id(T.composer))).toBeVisible();
    await say(alice, 'before the outage');
    await expect(bob.locator(id(T.messageBody))).toHaveText(['before the outage']);
    await expect(alice.locator(id(T.composerOffline))).toHaveCount(0);

    await server.down();
    // The composer says so, and still takes messages.
    await expect(alice.locator(id(T.composerOffline))).toBeVisible();
    await say(alice, 'first while down');
    await say(alice, 'second while down');
    await expect(alice.locator(id(T.messageBody))).toHaveText(['before the outage', 'first while down', 'second while down']);
    await expect(alice.locator(id(T.sendStatus))).toHaveText(['Waiting for connection…', 'Waiting for connection…']);
    // Something typed and not sent yet is kept too.
    await alice.fill(id(T.composer), 'a draft, not sent');
    await noRawErrors(alice);
    await alice.screenshot({ path: path.join(SHOTS, 'outbox-waiting.png') });
    await alice.setViewportSize({ width: 390, height: 844 });
    await alice.emulateMedia({ colorScheme: 'dark' });
    await alice.screenshot({ path: path.join(SHOTS, 'outbox-waiting-narrow-dark.png') });
    await alice.setViewportSize({ width: 1280, height: 720 });
    await alice.emulateMedia({ colorScheme: 'light' });

    // A reload while the server is down cannot load the page.
    const reloaded = await alice.reload().then(
      () => true,
      () => false,
    );
    expect(reloaded).toBe(false);
    await expect(alice.locator(id(T.composer))).toHaveCount(0);

    await server.up();
    await alice.goto(roomUrl);
    await hydrated(alice);
    // Nobody clicks anything: both go out, in order, once.
    await expect(bob.locator(id(T.messageBody))).toHaveText(['before the outage', 'first while down', 'second while down']);
    await expect(alice.locator(id(T.messageBody))).toHaveText(['before the outage', 'first while down', 'second while down']);
    await expect(alice.locator(id(T.sendStatus))).toHaveCount(0);
    await expect(alice.locator(id(T.composer))).toHaveValue('a draft, not sent');
    expect(await alice.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('switchboard.outbox')))).toEqual([]);
    // The server's history has each once, too.
    await bob.reload();
    await hydrated(bob);
    await expect(bob.locator(id(T.messageBody))).toHaveText(['before the outage', 'first while down', 'second while down']);
    await noRawErrors(alice);
    await noRawErrors(bob);
  } finally {
    await server.close();
  }
});

test('a message the server refuses for good says why, with Retry and Discard', async ({ browser }) => {
  const alice = await signIn(browser, `rita${run}`);
  const room = `refuse-${run}`;
  await alice.fill(id(T.newRoomName), room);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  const roomId = new URL(alice.url()).pathname.split('/').pop();
  // Sends over HTTP (chat on long polling), so the test can act while one is on its way.
  await alice.selectOption(transportPicker('chat'), 'long_poll');
  await expect(alice.locator(id(T.connection))).toContainText('Chat: long polling · live');

  // While a message is on its way, she leaves the room from another device: the server says 403.
  let leaveFirst = true;
  await alice.route('**/api/rooms/*/messages', async (route) => {
    if (route.request().method() === 'POST' && leaveFirst) {
      leaveFirst = false;
      const r = await alice.context().request.post(`/api/rooms/${roomId}/leave`);
      expect(r.status()).toBe(204);
    }
    await route.continue();
  });
  await say(alice, 'one for the road');
  const status = alice.locator(id(T.sendStatus));
  await expect(status).toHaveText(/^Not sent: You are not a member of this room any more\./);
  await expect(alice.locator(id(T.sendRetry))).toBeVisible();
  await expect(alice.locator(id(T.sendDiscard))).toBeVisible();
  await noRawErrors(alice);
  await alice.screenshot({ path: path.join(SHOTS, 'outbox-refused.png') });
  await alice.setViewportSize({ width: 390, height: 844 });
  await alice.emulateMedia({ colorScheme: 'dark' });
  await alice.screenshot({ path: path.join(SHOTS, 'outbox-refused-narrow-dark.png') });
  await alice.setViewportSize({ width: 1280, height: 720 });
  await alice.emulateMedia({ colorScheme: 'light' });

  // It stays (a reload keeps it, refused, not sent again by itself) until she decides.
  await alice.reload();
  await hydrated(alice);
  await expect(status).toHaveText(/^Not sent: You are not a member/);

  // Back in the room, Retry sends it (same client id).
  await alice.click(id(T.joinRoom));
  await expect(alice.locator(id(T.composer))).toBeVisible();
  await alice.click(id(T.sendRetry));
  await expect(status).toHaveCount(0);
  await expect(alice.locator(id(T.messageBody))).toHaveText(['one for the road']);

  // Refused again, then discarded: gone from the screen and from the browser's storage.
  leaveFirst = true;
  await say(alice, 'never mind');
  await expect(status).toHaveText(/^Not sent: You are not a member/);
  await alice.click(id(T.sendDiscard));
  await expect(status).toHaveCount(0);
  await expect(alice.locator(id(T.messageBody))).toHaveText(['one for the road']);
  expect(await alice.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('switchboard.outbox')))).toEqual([]);
  await alice.reload();
  await hydrated(alice);
  await expect(alice.locator(id(T.messageBody))).toHaveText(['one for the road']);
});

test('a message left in the outbox that the server refuses as too long says so over the WebSocket, and Discard removes it', async ({ browser }) => {
  const alice = await signIn(browser, `tess${run}`);
  const room = `toolong-${run}`;
  await alice.fill(id(T.newRoomName), room);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  await expect(alice.locator(id(T.connection))).toHaveText('Chat: WebSocket · live');
  const roomId = new URL(alice.url()).pathname.split('/').pop()!;
  const me: string = await alice.evaluate(async () => (await (await fetch('/api/me')).json()).id);
  // Left by an earlier page (this composer would not let it through): over 4000 characters.
  await alice.evaluate(
    ([me, roomId]) =>
      localStorage.setItem(
        `switchboard.outbox.${me}`,
        JSON.stringify([{ room_id: roomId, client_id: 'left-over-1', body: 'x'.repeat(4001), created_at: Date.now() }]),
      ),
    [me, roomId],
  );
  await alice.reload();
  await hydrated(alice);
  const status = alice.locator(id(T.sendStatus));
  await expect(status).toHaveText(/^Not sent: Too long: messages are at most 4000 characters\./);
  await expect(alice.locator(id(T.connection))).toHaveText('Chat: WebSocket · live');
  await noRawErrors(alice);
  // The next message is not held up by the refused one.
  await say(alice, 'a short one');
  await expect(alice.locator(id(T.messageBody)).filter({ hasText: 'a short one' })).toHaveCount(1);
  // Only the refused one still has a status: the short one was sent.
  await expect(status).toHaveCount(1);
  // With the keyboard: Discard is a button like any other.
  await alice.locator(id(T.sendDiscard)).focus();
  await alice.keyboard.press('Enter');
  await expect(status).toHaveCount(0);
  await expect(alice.locator(id(T.messageBody))).toHaveText(['a short one']);
  expect(await alice.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('switchboard.outbox')))).toEqual([]);
});

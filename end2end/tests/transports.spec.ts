import { test, expect, type Page, type Browser } from '@playwright/test';
import { hydrated, signIn, run, PASSWORD, SHOTS } from './helpers';
import * as path from 'node:path';
import { T, id, transportPicker, readout } from './testids';

async function say(page: Page, text: string) {
  await page.fill(id(T.composer), text);
  await page.press(id(T.composer), 'Enter');
}

test('switching chat to long polling mid-conversation keeps messages flowing, once each', async ({ browser }) => {
  const alice = await signIn(browser, `tina${run}`);
  const bob = await signIn(browser, `tom${run}`);
  const room = `switch-${run}`;
  await alice.fill(id(T.newRoomName), room);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.connection))).toContainText('Chat: WebSocket · live');
  await bob.reload();
  await hydrated(bob);
  await bob.locator(id(T.roomList)).getByText(`# ${room}`).click();
  await bob.click(id(T.joinRoom));
  await expect(bob.locator(id(T.connection))).toContainText('Chat: WebSocket · live');

  await say(alice, 'one');
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('one');

  // Bob switches chat to long polling from the room header while Alice keeps talking.
  await bob.selectOption(transportPicker('chat'), 'long_poll');
  await say(alice, 'two');
  await expect(bob.locator(id(T.connection))).toContainText('Chat: long polling · live');
  await say(alice, 'three');
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('three');
  await expect(bob.locator(id(T.messageBody))).toHaveText(['one', 'two', 'three']);

  // Bob's own sends go over HTTP now and still arrive.
  await say(bob, 'polling works');
  await expect(alice.locator(id(T.messageBody)).last()).toHaveText('polling works');

  // The readout: no gaps, and the switch overlap was caught by the duplicate filter if any.
  await bob.click('[data-testid="open-settings"]');
  await expect(bob.locator(readout('chat'))).toContainText('long polling');
  await expect(bob.locator(`${readout('chat')} [data-testid="gaps"]`)).toHaveText('0');
  await bob.screenshot({ path: path.join(SHOTS, 'transports-settings.png') });
});

test('an admin switching WebSocket off moves clients to the next transport by themselves', async ({ browser }) => {
  // The first account of the run's fresh database (global-setup.ts) is the admin.
  const admin = await signIn(browser, 'e2eadmin', false);
  expect(await admin.evaluate(async () => (await (await fetch('/api/me')).json()).is_admin)).toBe(true);
  const user = await signIn(browser, `uma${run}`);
  const room = `fallback-${run}`;
  await admin.fill(id(T.newRoomName), room);
  await admin.click(id(T.newRoomSubmit));
  await user.reload();
  await hydrated(user);
  await user.locator(id(T.roomList)).getByText(`# ${room}`).click();
  await user.click(id(T.joinRoom));
  await expect(user.locator(id(T.connection))).toContainText('Chat: WebSocket · live');

  // The admin turns WebSocket off for everyone from the settings panel.
  await admin.click('[data-testid="open-settings"]');
  await admin.uncheck('[data-testid="switch-websocket"]');
  await expect(admin.locator('[data-testid="transport-chat"] option[value="websocket"]').first()).toHaveText(/off/);
  await expect(user.locator(id(T.connection))).toContainText('Chat: SSE · live');
  await say(admin, 'still here?');
  await expect(user.locator(id(T.messageBody)).last()).toHaveText('still here?');
  await user.screenshot({ path: path.join(SHOTS, 'transports-fallback.png') });

  await admin.screenshot({ path: path.join(SHOTS, 'transports-admin-switches.png') });
  await admin.check('[data-testid="switch-websocket"]');
  await expect(user.locator(id(T.connection))).toContainText('Chat: WebSocket · live');
});

test('the admin console overrides a user transport and their open page switches', async ({ browser }) => {
  const admin = await signIn(browser, 'e2eadmin', false);
  const user = await signIn(browser, `val${run}`);
  await expect(user.locator(id(T.connection))).toContainText('Chat: WebSocket · live');

  await admin.click('[data-testid="admin-link"]');
  await expect(admin.locator('[data-testid="admin-page"]')).toBeVisible();
  const row = admin.locator(`[data-testid="admin-user"][data-username="val${run}"]`);
  await row.locator('[data-testid="override-chat"]').selectOption('long_poll');
  await expect(user.locator(id(T.connection))).toContainText('Chat: long polling · live');
  await expect(row).toContainText('long poll');
  // The live comparison fills in, and the override is in the audit log.
  await expect(admin.locator('[data-testid="metrics-table"] tbody tr')).toHaveCount(4);
  await expect(admin.locator('[data-testid="m-websocket-open"]')).toHaveText(/^[1-9]\d*$/);
  await expect(admin.locator('[data-testid="m-long_poll-requests"]')).toHaveText(/^[1-9]\d*$/);
  await expect(admin.locator('[data-testid="audit-log"]')).toContainText(`e2eadmin set val${run}'s chat transport to long polling`);
  await admin.screenshot({ path: path.join(SHOTS, 'admin-console.png'), fullPage: true });

  await row.locator('[data-testid="override-chat"]').selectOption('');
  await expect(user.locator(id(T.connection))).toContainText('Chat: WebSocket · live');
});

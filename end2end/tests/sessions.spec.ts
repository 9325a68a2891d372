// "Sign out everywhere" from the settings panel: the other device's open page is sent to the
// sign-in page by its own live connection (closed as signed out), and its cookie is dead.
import { test, expect } from '@playwright/test';
import { signIn, run } from './helpers';
import { T, id } from './testids';

test('sign out everywhere ends the other device\'s session and its live page', async ({ browser }) => {
  const name = `twodev${run}`;
  const laptop = await signIn(browser, name);
  const phone = await signIn(browser, name, false);

  await laptop.click('[data-testid="open-settings"]');
  await laptop.click(id(T.signOutEverywhere));
  await laptop.waitForURL((u) => u.pathname === '/login');
  // The phone did nothing: its WebSocket was closed with 4001 and the app went to sign-in.
  await phone.waitForURL((u) => u.pathname === '/login');
  expect(await phone.evaluate(async () => (await fetch('/api/me')).status)).toBe(401);
  expect(await laptop.evaluate(async () => (await fetch('/api/me')).status)).toBe(401);
});

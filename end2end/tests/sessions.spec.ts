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
  // Polled rather than waitForURL: the laptop can be sent to /login twice (by the button and by
  // its own live connection closing as signed out), and waitForURL failed once in CI with
  // ERR_ABORTED, the first navigation cut off. Reads retry while a navigation replaces the page.
  const path = (p: typeof laptop) => new URL(p.url()).pathname;
  await expect.poll(() => path(laptop)).toBe('/login');
  // The phone did nothing: its WebSocket was closed with 4001 and the app went to sign-in.
  await expect.poll(() => path(phone)).toBe('/login');
  const me = (p: typeof laptop) => p.evaluate(async () => (await fetch('/api/me')).status);
  await expect.poll(() => me(phone)).toBe(401);
  await expect.poll(() => me(laptop)).toBe(401);
});

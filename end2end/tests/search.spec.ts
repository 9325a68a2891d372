// Search: find an old message (well before the newest page of the room) with Ctrl+K, see the
// match marked in the result, open it, and land on it in its room, visible and highlighted.
import { test, expect, type Page } from '@playwright/test';
import { hydrated, signIn, run } from './helpers';
import { T, id } from './testids';

async function createRoom(page: Page, name: string): Promise<string> {
  await page.fill(id(T.newRoomName), name);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toHaveText(`# ${name}`);
  return new URL(page.url()).pathname.split('/')[2];
}

test('find an old message and jump to it', async ({ browser, baseURL }) => {
  const alice = await signIn(browser, `srch_a${run}`);
  const roomId = await createRoom(alice, `search-${run}`);
  const headers = { origin: baseURL! };
  // One old message with a rare word, then more than a page (50) of newer ones.
  const post = async (body: string, i: number) => {
    const r = await alice.request.post(`/api/rooms/${roomId}/messages`, {
      headers,
      data: { body, client_id: `srch-${run}-${i}` },
    });
    expect(r.status(), await r.text()).toBe(201);
  };
  await post('the quarterly zeppelin report is due', 0);
  for (let i = 1; i <= 70; i++) await post(`filler message ${i}`, i);

  // Somewhere else, so the jump also opens the room.
  await alice.goto('/');
  await hydrated(alice);
  await alice.keyboard.press('Control+k');
  await expect(alice.locator(id(T.searchPanel))).toBeVisible();
  await alice.fill(id(T.searchInput), 'zeppel*');
  const hit = alice.locator(id(T.searchHit));
  await expect(hit).toHaveCount(1);
  await expect(hit.locator('mark')).toHaveText(/zeppelin/i);
  await expect(alice.locator(`${id(T.searchResults)} h3`)).toHaveText(`#search-${run}`);
  // Keyboard: Enter opens the active (first) result.
  await alice.press(id(T.searchInput), 'Enter');
  await expect(alice.locator(id(T.searchPanel))).toHaveCount(0);
  await expect(alice).toHaveURL(new RegExp(`/rooms/${roomId}$`));
  const target = alice
    .locator(`${id(T.messages)} ${id(T.message)}`)
    .filter({ has: alice.locator(id(T.messageBody), { hasText: 'zeppelin' }) });
  await expect(target).toHaveClass(/focused/);
  await expect(target).toBeInViewport();

  // The button opens it too, and a query with only punctuation says why nothing is searched.
  await alice.click(id(T.openSearch));
  await alice.fill(id(T.searchInput), '"*"');
  await expect(alice.locator(`${id(T.searchResults)} [role="alert"]`)).toContainText('at least one word');
  await alice.keyboard.press('Escape');
  await expect(alice.locator(id(T.searchPanel))).toHaveCount(0);
});

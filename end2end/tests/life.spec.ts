// A message's whole life, between two people, live: edit, delete, react, reply, a thread, on
// WebSocket and on short polling; and Markdown with hostile input shown safely.
import { test, expect, type Page } from '@playwright/test';
import { hydrated, signIn, run, SHOTS } from './helpers';
import * as path from 'node:path';
import { T, id, transportPicker } from './testids';

async function say(page: Page, text: string) {
  await page.fill(id(T.composer), text);
  await page.press(id(T.composer), 'Enter');
}

/** The message row whose body has exactly `text`. */
function row(page: Page, text: string | RegExp) {
  return page.locator(`${id(T.messages)} ${id(T.message)}`).filter({
    has: page.locator(id(T.messageBody), { hasText: text }),
  });
}

/** Alice makes a room and Bob joins it; both on chat transport `transport`. */
async function pair(browser: any, tag: string, transport: string) {
  const alice = await signIn(browser, `al${tag}${run}`);
  const bob = await signIn(browser, `bo${tag}${run}`);
  const room = `life-${tag}-${run}`;
  await alice.fill(id(T.newRoomName), room);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  await bob.reload();
  await hydrated(bob);
  await bob.locator(id(T.roomList)).getByText(`# ${room}`).click();
  await bob.click(id(T.joinRoom));
  await expect(bob.locator(id(T.composer))).toBeVisible();
  if (transport !== 'websocket') {
    const label = transport.replace('_', ' ').replace('short poll', 'short polling');
    for (const p of [alice, bob]) {
      await p.selectOption(transportPicker('chat'), transport);
      await expect(p.locator(id(T.connection))).toContainText(`Chat: ${label} · live`);
    }
  }
  return { alice, bob };
}

for (const transport of ['websocket', 'short_poll']) {
  test(`two people edit, delete, react, reply and open a thread, live (${transport})`, async ({ browser }) => {
    const tag = transport === 'websocket' ? 'w' : 's';
    const { alice, bob } = await pair(browser, tag, transport);

    await say(alice, 'first draft');
    await expect(row(bob, 'first draft')).toHaveCount(1);

    // Alice edits in place from the toolbar: Bob sees the new body and "(edited)".
    const mine = row(alice, 'first draft');
    await mine.hover();
    await mine.locator(id(T.messageEdit)).click();
    await alice.fill(id(T.editBox), 'final words');
    await alice.press(id(T.editBox), 'Enter');
    await expect(row(bob, 'final words')).toHaveCount(1);
    await expect(row(bob, 'final words').locator(id(T.messageEdited))).toHaveAttribute('title', /^Edited /);
    await expect(row(alice, 'final words').locator(id(T.messageEdited))).toBeVisible();

    // Up in an empty composer edits my last message; Escape cancels.
    await alice.click(id(T.composer));
    await alice.press(id(T.composer), 'ArrowUp');
    await expect(alice.locator(id(T.editBox))).toBeVisible();
    await alice.press(id(T.editBox), 'Escape');
    await expect(alice.locator(id(T.editBox))).toHaveCount(0);

    // Bob reacts through the picker (searching by name); Alice sees the chip, and adds hers.
    const theirs = row(bob, 'final words');
    await theirs.hover();
    await theirs.locator(id(T.messageReact)).click();
    await bob.fill(id(T.emojiSearch), 'tada');
    await bob.press(id(T.emojiSearch), 'Enter');
    await expect(bob.locator(id(T.emojiPicker))).toHaveCount(0);
    const bobChip = theirs.locator(id(T.reactionChip));
    await expect(bobChip).toHaveAttribute('aria-pressed', 'true');
    const aliceChip = row(alice, 'final words').locator(id(T.reactionChip));
    await expect(aliceChip).toContainText('🎉1');
    await expect(aliceChip).toHaveAttribute('aria-pressed', 'false');
    await expect(aliceChip).toHaveAttribute('title', new RegExp(`bo${tag}${run} reacted with :tada:`));
    await aliceChip.click();
    await expect(aliceChip).toHaveAttribute('aria-pressed', 'true');
    await expect(bobChip).toContainText('🎉2');
    // Bob takes his back.
    await bobChip.click();
    await expect(aliceChip).toContainText('🎉1');
    await expect(bobChip).toHaveAttribute('aria-pressed', 'false');

    // Bob replies: the composer says to whom; Alice sees the quote, and it jumps to the original.
    await theirs.hover();
    await theirs.locator(id(T.messageReply)).click();
    await expect(bob.locator(id(T.replying))).toContainText(`Replying to al${tag}${run}`);
    await say(bob, 'a reply to that');
    await expect(bob.locator(id(T.replying))).toHaveCount(0);
    const reply = row(alice, 'a reply to that');
    await expect(reply.locator(id(T.replyQuote))).toContainText('final words');
    await expect(row(alice, 'final words').locator(id(T.threadOpen))).toHaveText('1 reply');
    await reply.locator(id(T.replyQuote)).click();
    await expect(row(alice, 'final words')).toHaveClass(/\bflash\b/);

    // Alice opens the thread and answers there; Bob has it open too and sees it arrive.
    await row(bob, 'final words').locator(id(T.threadOpen)).click();
    await expect(bob.locator(id(T.threadPanel))).toContainText('a reply to that');
    await row(alice, 'final words').locator(id(T.threadOpen)).click();
    await alice.fill(id(T.threadComposer), 'in the thread');
    await alice.press(id(T.threadComposer), 'Enter');
    await expect(bob.locator(`${id(T.threadPanel)} ${id(T.messageBody)}`).last()).toHaveText('in the thread');
    await expect(row(bob, 'final words').locator(id(T.threadOpen))).toHaveText('2 replies');
    await bob.click(id(T.threadClose));
    await expect(bob.locator(id(T.threadPanel))).toHaveCount(0);

    // Bob deletes his reply after confirming; Alice sees the tombstone.
    const gone = row(bob, 'a reply to that');
    await gone.hover();
    await gone.locator(id(T.messageDelete)).click();
    await expect(bob.locator(id(T.deleteConfirm))).toBeVisible();
    await bob.click(id(T.deleteConfirmYes));
    const tombstone = (p: Page) => p.locator(`${id(T.messages)} ${id(T.messageBody)}`, { hasText: 'This message was deleted' });
    await expect(tombstone(alice)).toHaveCount(1);
    await expect(row(alice, 'a reply to that')).toHaveCount(0);
    // The thread Alice has open shows it too.
    await expect(alice.locator(id(T.threadPanel))).toContainText('This message was deleted');
    // Only the author edits; the author (or an admin) deletes: Bob has neither on Alice's message.
    await expect(row(alice, 'final words').locator(id(T.messageEdit))).toHaveCount(1);
    await expect(row(alice, 'final words').locator(id(T.messageDelete))).toHaveCount(1);
    await expect(row(bob, 'final words').locator(id(T.messageEdit))).toHaveCount(0);
    await expect(row(bob, 'final words').locator(id(T.messageDelete))).toHaveCount(0);

    // All of it is the server's state: a reload shows the same.
    await bob.reload();
    await hydrated(bob);
    await expect(row(bob, 'final words').locator(id(T.messageEdited))).toBeVisible();
    await expect(row(bob, 'final words').locator(id(T.reactionChip))).toContainText('🎉1');
    await expect(tombstone(bob)).toHaveCount(1);

    await alice.context().close();
    await bob.context().close();
  });
}

test('Markdown renders as a view, hostile input stays text, and completion helps', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'm', 'websocket');
  const hostile = [
    '[click](javascript:window.__pwned=1)',
    '<img src=x onerror="window.__pwned=2"> <b>bold?</b>',
    '<script>window.__pwned=3</script>',
    '[data](data:text/html,<script>alert(1)</script>) and [rel](/admin)',
  ];
  for (const body of hostile) await say(alice, body);
  await say(alice, '*em* **strong** `code` see https://example.com/a_b and [mail](mailto:x@example.com)\n> quoted\n- one\n- two');
  await say(alice, '```\n' + Array.from({ length: 300 }, (_, i) => `line ${i}`).join('\n') + '\n```');
  const msgs = bob.locator(id(T.messages));
  await expect(msgs.locator('pre.code')).toHaveCount(1);

  expect(await msgs.locator('img, script, b').count()).toBe(0);
  await expect(msgs.locator('a')).toHaveCount(2);
  const web = msgs.locator('a[href="https://example.com/a_b"]');
  await expect(web).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(web).toHaveAttribute('target', '_blank');
  await expect(msgs.locator('a[href="mailto:x@example.com"]')).toHaveCount(1);
  await expect(msgs.locator('em')).toHaveText('em');
  await expect(msgs.locator('strong')).toHaveText('strong');
  await expect(msgs.locator('.md code').first()).toHaveText('code');
  await expect(msgs.locator('blockquote')).toContainText('quoted');
  await expect(msgs.locator('ul li')).toHaveText(['one', 'two']);
  await expect(row(bob, 'click')).toHaveCount(1);
  await expect(row(bob, /<img src=x onerror/)).toHaveCount(1);
  // A huge code block does not take the page: it scrolls within itself.
  const box = await msgs.locator('pre.code').boundingBox();
  expect(box!.height).toBeLessThan(400);
  expect(await bob.evaluate(() => (window as any).__pwned)).toBeUndefined();

  // :shortcode: completion: type, pick with Enter.
  await bob.locator(id(T.composer)).pressSequentially('nice :tad');
  await expect(bob.locator(id(T.suggestion)).first()).toContainText('🎉 :tada:');
  await bob.press(id(T.composer), 'Enter');
  await expect(bob.locator(id(T.composer))).toHaveValue('nice 🎉');
  // @mention completion from the people in the room: Tab picks.
  await bob.locator(id(T.composer)).pressSequentially(` @alm`);
  await expect(bob.locator(id(T.suggestion)).first()).toHaveText(`@alm${run}`);
  await bob.press(id(T.composer), 'Tab');
  await expect(bob.locator(id(T.composer))).toHaveValue(`nice 🎉 @alm${run} `);
  await bob.press(id(T.composer), 'Enter');
  await expect(row(alice, `nice 🎉 @alm${run}`)).toHaveCount(1);

  // The picker from the keyboard: arrows move, Enter picks, Escape closes.
  await bob.click(id(T.composerEmoji));
  await expect(bob.locator(id(T.emojiSearch))).toBeFocused();
  await bob.keyboard.press('ArrowRight');
  await bob.keyboard.press('Enter');
  await expect(bob.locator(id(T.composer))).toHaveValue('❤️');
  await bob.click(id(T.composerEmoji));
  await bob.keyboard.press('Escape');
  await expect(bob.locator(id(T.emojiPicker))).toHaveCount(0);

  await bob.screenshot({ path: path.join(SHOTS, 'life-markdown.png') });
  await alice.context().close();
  await bob.context().close();
});

test('on a phone, a tap on a message shows its actions and the picker reacts', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'p', 'websocket');
  await alice.context().close();
  // Bob again, on a touch phone: no hover, a small screen.
  const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true };
  const page = await signIn(browser, `bop${run}`, false, undefined, phone);
  await page.locator(id(T.roomList)).getByText(`# life-p-${run}`).tap();
  await say(page, 'from my phone');
  const mine = row(page, 'from my phone');
  await expect(mine.locator(id(T.messageReact))).toBeHidden();
  await mine.locator(id(T.messageBody)).tap();
  await expect(mine.locator(id(T.messageReact))).toBeVisible();
  await mine.locator(id(T.messageReact)).tap();
  const picker = page.locator(id(T.emojiPicker));
  await expect(picker).toBeVisible();
  await expect(page.locator(id(T.emojiSearch))).toBeFocused();
  // The whole picker is on screen.
  const box = (await picker.boundingBox())!;
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.y).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width).toBeLessThanOrEqual(390);
  expect(box.y + box.height).toBeLessThanOrEqual(844);
  await page.fill(id(T.emojiSearch), 'tada');
  await page.locator(id(T.emojiOption)).first().tap();
  await expect(picker).toHaveCount(0);
  await expect(mine.locator(id(T.reactionChip))).toHaveAttribute('aria-pressed', 'true');
  await expect(mine.locator(id(T.reactionChip))).toContainText('🎉1');
  await bob.context().close();
  await page.context().close();
});

test('a New messages divider where I left off, Jump to latest, and older pages on scroll', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'd', 'websocket');
  for (let i = 0; i < 60; i++) {
    await alice.evaluate(
      async ([n, url]) => {
        await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ body: `old ${n}`, client_id: `old-${n}-${Math.random()}` }),
        });
      },
      [i, new URL(alice.url()).pathname.replace('/rooms/', '/api/rooms/') + '/messages'],
    );
  }
  await expect(row(alice, 'old 59')).toHaveCount(1);
  // Bob read up to "old 59" (the room was on his screen, and the server has his read position
  // before he leaves); he goes away, Alice writes 3 more, and Bob comes back in a fresh page:
  // his read position is the server's.
  await expect(row(bob, 'old 59')).toHaveCount(1);
  const room = `life-d-${run}`;
  await expect
    .poll(() =>
      bob.evaluate(async (name) => {
        const r = await fetch('/api/rooms');
        const rooms: { name: string; unread: number }[] = (await r.json()).rooms;
        return rooms.find((x) => x.name === name)?.unread;
      }, room),
    )
    .toBe(0);
  await bob.goto('/');
  await hydrated(bob);
  await say(alice, 'unread 1');
  await say(alice, 'unread 2');
  await say(alice, 'unread 3');
  await expect(bob.locator(id(T.roomList))).toContainText('3 unread');
  await bob.reload();
  await hydrated(bob);
  await bob.locator(id(T.roomList)).getByText(`# life-d-${run}`).click();
  const divider = bob.locator(id(T.newDivider));
  await expect(divider).toHaveCount(1);
  // The divider sits right above the first unread message.
  const next = bob.locator(`${id(T.newDivider)} + li ${id(T.messageBody)}`);
  await expect(next).toHaveText('unread 1');

  // Scrolled up, new messages are counted on the Jump button.
  await bob.locator(id(T.messages)).evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await say(alice, 'while away 1');
  await say(alice, 'while away 2');
  await expect(bob.locator(id(T.jumpLatest))).toHaveText('Jump to latest (2 new)');
  await bob.click(id(T.jumpLatest));
  await expect(bob.locator(id(T.jumpLatest))).toHaveCount(0);

  // Scrolling to the top loads the page before, and the first message on screen stays put.
  const first = bob.locator(id(T.message)).first();
  const firstText = await first.locator(id(T.messageBody)).textContent();
  await bob.locator(id(T.messages)).evaluate((el) => (el.scrollTop = 0));
  await expect(bob.locator(id(T.messageBody), { hasText: /^old 0$/ })).toHaveCount(1);
  const still = bob.locator(id(T.message)).filter({ has: bob.locator(id(T.messageBody), { hasText: new RegExp(`^${firstText}$`) }) });
  const top = await still.evaluate((el) => el.getBoundingClientRect().top);
  const listTop = await bob.locator(id(T.messages)).evaluate((el) => el.getBoundingClientRect().top);
  expect(top).toBeGreaterThan(listTop);
  await alice.context().close();
  await bob.context().close();
});

test('a reply whose original is not loaded: its quote loads older history and shows it', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'o', 'websocket');
  const url = new URL(alice.url()).pathname.replace('/rooms/', '/api/rooms/') + '/messages';
  const post = (body: Record<string, unknown>) =>
    alice.evaluate(
      async ([u, b]) => {
        const r = await fetch(u as string, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ client_id: `o-${Math.random()}`, ...(b as object) }),
        });
        return (await r.json()).id as string;
      },
      [url, body],
    );
  const original = await post({ body: 'the original question' });
  for (let i = 0; i < 60; i++) await post({ body: `filler ${i}` });
  await post({ body: 'the answer', reply_to: original });
  await expect(row(alice, 'the answer')).toHaveCount(1);
  // Bob opens the room afresh: only the newest page is loaded, without the original.
  await bob.reload();
  await hydrated(bob);
  await expect(row(bob, 'the answer')).toHaveCount(1);
  await expect(row(bob, 'the original question')).toHaveCount(0);
  await row(bob, 'the answer').locator(id(T.replyQuote)).click();
  const shown = row(bob, 'the original question');
  await expect(shown).toBeInViewport();
  await expect(shown).toHaveClass(/flash/);
  await expect(bob.locator(id(T.threadPanel))).toHaveCount(0);
  await alice.context().close();
  await bob.context().close();
});

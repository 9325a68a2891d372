// Issue 18, "a first hour without surprises": what two new users ran into, each checked the way
// they would see it.
import { test, expect, type Page, type Browser } from '@playwright/test';
import { hydrated, signIn, run, shot } from './helpers';
import { T, id } from './testids';

/** `a` creates a public room and `b` joins it (found live under "Other rooms"). */
async function shareRoom(a: Page, b: Page, name: string) {
  await a.fill(id(T.newRoomName), name);
  await a.click(id(T.newRoomSubmit));
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# ${name}`);
  await b.locator(id(T.roomList)).getByText(`# ${name}`).click();
  await expect(b.locator(id(T.roomTitle))).toHaveText(`# ${name}`);
  await b.click(id(T.joinRoom));
  await expect(b.locator(id(T.composer))).toBeVisible();
}

async function say(p: Page, text: string) {
  await p.fill(id(T.composer), text);
  await p.press(id(T.composer), 'Enter');
  await expect(p.locator(id(T.messageBody)).last()).toHaveText(text);
}

/** The presence dot of the last message by `username` in `p`'s open room. */
function dotOf(p: Page, username: string) {
  return p.locator('.msg').filter({ hasText: username }).last().locator('[data-testid="presence"]');
}

/** Makes the page's tab hidden (or visible again) as a browser does when it goes to the back. */
async function setHidden(p: Page, hidden: boolean) {
  await p.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get: () => (h ? 'hidden' : 'visible'),
    });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  }, hidden);
}

async function presenceOf(p: Page, username: string): Promise<string | undefined> {
  const r = await p.request.get('/api/presence');
  const body = await r.json();
  return body.users.find((u: any) => u.user.username === username)?.status;
}

test('people in visible tabs are online to each other; a hidden tab is idle', async ({ browser }) => {
  const pia = `fhpia${run}`;
  const pete = `fhpete${run}`;
  const a = await signIn(browser, pia);
  const b = await signIn(browser, pete);
  await shareRoom(a, b, `fh-presence-${run}`);
  await say(a, 'hi from pia');
  await say(b, 'hi from pete');
  await expect(a.locator(id(T.messageBody)).last()).toHaveText('hi from pete');

  // Both tabs are visible and were used just now: online, on screen and in the API.
  await expect(dotOf(a, pete)).toHaveClass(/\bonline\b/);
  await expect(dotOf(b, pia)).toHaveClass(/\bonline\b/);
  await expect(dotOf(a, pete)).toHaveText('online');
  await expect.poll(() => presenceOf(a, pete)).toBe('online');
  await expect.poll(() => presenceOf(b, pia)).toBe('online');

  // Pete's tab goes to the back: idle for Pia; back in front: online again.
  await setHidden(b, true);
  await expect(dotOf(a, pete)).toHaveClass(/\bidle\b/);
  await expect.poll(() => presenceOf(a, pete)).toBe('idle');
  await setHidden(b, false);
  await expect(dotOf(a, pete)).toHaveClass(/\bonline\b/);
  await expect.poll(() => presenceOf(a, pete)).toBe('online');

  // A reload (the old page goes hidden as it unloads) leaves Pete online, not idle.
  await b.reload();
  await hydrated(b);
  await say(b, 'back after a reload');
  await expect(a.locator(id(T.messageBody)).last()).toHaveText('back after a reload');
  await expect(dotOf(a, pete)).toHaveClass(/\bonline\b/);
  await expect.poll(() => presenceOf(a, pete)).toBe('online');
});

test('every page renders signed in on a reload', async ({ browser }) => {
  const admin = await signIn(browser, 'e2eadmin', false);
  const room = `fh-reload-${run}`;
  await admin.fill(id(T.newRoomName), room);
  await admin.click(id(T.newRoomSubmit));
  await expect(admin.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  const roomPath = new URL(admin.url()).pathname;
  const pages: [string, string][] = [
    ['/', id(T.roomList)],
    [roomPath, id(T.roomTitle)],
    ['/jobs', '[data-testid="jobs-page"]'],
    ['/admin', '[data-testid="metrics-feed-state"]'],
    ['/race', '[data-testid="race-page"]'],
  ];
  for (const [path, marker] of pages) {
    await admin.goto(path);
    // The server's own rendering, before and after hydration: signed in, on that page.
    await expect(admin.locator(marker), path).toBeVisible();
    await expect(admin.getByText('You are signed out'), path).toHaveCount(0);
    await hydrated(admin);
    await expect(admin.locator(marker), path).toBeVisible();
    await expect(admin.locator('[data-testid="sign-out"]'), path).toBeVisible();
    await admin.reload();
    await expect(admin.locator(marker), `${path} reloaded`).toBeVisible();
    await expect(admin.getByText('You are signed out'), `${path} reloaded`).toHaveCount(0);
  }
});

test('a new public room reaches everyone without a reload; a private one does not', async ({ browser }) => {
  const a = await signIn(browser, `fhrosa${run}`);
  const b = await signIn(browser, `fhrick${run}`);
  await a.fill(id(T.newRoomName), `fh-hidden-${run}`);
  await a.check(id(T.newRoomPrivate));
  await a.click(id(T.newRoomSubmit));
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# fh-hidden-${run}`);
  if (await a.locator(id(T.newRoomPrivate)).isChecked()) await a.uncheck(id(T.newRoomPrivate));
  await a.fill(id(T.newRoomName), `fh-fresh-${run}`);
  await a.click(id(T.newRoomSubmit));
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# fh-fresh-${run}`);

  // Rick never reloaded: the room is under "Other rooms", ready to join.
  const link = b.locator(id(T.roomList)).getByRole('link', { name: new RegExp(`# fh-fresh-${run}`) });
  await expect(link).toBeVisible();
  await expect(link).toContainText('join');
  await expect(b.locator(id(T.roomList)).getByText(`fh-hidden-${run}`)).toHaveCount(0);
  // Rosa's own list has it once, as hers.
  await expect(a.locator(id(T.roomList)).getByText(`# fh-fresh-${run}`)).toHaveCount(1);
  await link.click();
  await b.click(id(T.joinRoom));
  await say(b, 'found it live');
  await expect(a.locator(id(T.messageBody)).last()).toHaveText('found it live');
});

test('success notices go away by themselves; errors when the room changes', async ({ browser }) => {
  const a = await signIn(browser, `fhnina${run}`);
  const b = await signIn(browser, `fhned${run}`);
  const room = `fh-notices-${run}`;
  await a.fill(id(T.newRoomName), room);
  await a.click(id(T.newRoomSubmit));
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  const notice = a.locator(id(T.notice));

  // A demo job the server refuses (no steps): the error stays put...
  await a.click('[data-testid="jobs-link"]');
  await expect(a.locator('[data-testid="jobs-page"]')).toBeVisible();
  // (The browser's own check of the field would stop 0 before the server sees it.)
  await a.locator('form.demo-form').evaluate((f) => ((f as HTMLFormElement).noValidate = true));
  await a.fill('[data-testid="demo-steps"]', '0');
  await a.click('[data-testid="start-demo"]');
  await expect(notice).toBeVisible();
  const error = await notice.textContent();
  expect(error).not.toMatch(/[{}]|Error:|at .*\.js/);
  await a.fill('[data-testid="demo-steps"]', '3'); // input elsewhere does not clear it
  await expect(notice).toHaveText(error ?? '');
  // ...until another page opens.
  await a.locator(id(T.roomList)).getByText(`# ${room}`).click();
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  await expect(notice).toHaveCount(0);

  // A success says so, then leaves by itself. Invites are made from the member panel.
  await a.click(id(T.openMembers));
  await a.fill(id(T.inviteUsername), `fhned${run}`);
  await a.click(id(T.inviteSubmit));
  await expect(notice).toHaveText(new RegExp(`Invited fhned${run}\\.`));
  await expect(notice).toHaveCount(0, { timeout: 10_000 });
  await b.close();
});

test('toasts: never over the composer, none for the room on screen', async ({ browser }) => {
  const tia = `fhtia${run}`;
  const a = await signIn(browser, tia);
  const b = await signIn(browser, `fhtoby${run}`);
  const here = `fh-toast-here-${run}`;
  const there = `fh-toast-there-${run}`;
  await shareRoom(b, a, there);
  await shareRoom(b, a, here);
  // Tia looks at "here"; Tom mentions her there first, then here.
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# ${here}`);
  await b.locator(id(T.roomList)).getByText(`# ${here}`).click();
  await say(b, `@${tia} right here`);
  await expect(a.locator(id(T.messageBody)).last()).toHaveText(`@${tia} right here`);
  await b.locator(id(T.roomList)).getByText(`# ${there}`).click();
  await say(b, `@${tia} over there`);
  // The second mention toasts; the first (in the room on screen) never did. Both ride the
  // notifications feed in order, so the second toast means the first was handled.
  const toasts = a.locator('[data-testid="toast"]');
  await expect(toasts).toHaveCount(1);
  await expect(toasts).toContainText('over there');

  for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    await a.setViewportSize(size);
    if (size.width < 768) {
      // One column: the room is on screen.
      await expect(a.locator(id(T.composer))).toBeVisible();
    }
    const t = await toasts.first().boundingBox();
    for (const part of [T.composer, T.send, T.roomTitle, T.openMembers]) {
      const box = await a.locator(id(part)).boundingBox();
      expect(t && box, `${part} at ${size.width}`).toBeTruthy();
      const overlap =
        t!.x < box!.x + box!.width && box!.x < t!.x + t!.width && t!.y < box!.y + box!.height && box!.y < t!.y + t!.height;
      expect(overlap, `a toast covers ${part} at ${size.width}×${size.height}`).toBe(false);
    }
    await shot(a, `toast-${size.width}.png`);
  }
});

test('opening a room reads its mentions; "Mark all read" clears the room badges', async ({ browser }) => {
  const uma = `fhuma${run}`;
  const a = await signIn(browser, uma);
  const b = await signIn(browser, `fhulf${run}`);
  const one = `fh-read-one-${run}`;
  const two = `fh-read-two-${run}`;
  await shareRoom(b, a, one);
  await shareRoom(b, a, two);
  // Uma is on the jobs page when Ulf mentions her in both rooms.
  await a.click('[data-testid="jobs-link"]');
  await expect(a.locator('[data-testid="jobs-page"]')).toBeVisible();
  await say(b, `@${uma} in two`);
  await b.locator(id(T.roomList)).getByText(`# ${one}`).click();
  await say(b, `@${uma} in one`);
  const bell = a.locator('[data-testid="bell-badge"]');
  const badge = (room: string) =>
    a.locator(id(T.roomList)).getByRole('link', { name: new RegExp(`# ${room}`) }).locator('.badge');
  await expect(bell).toHaveText('2');
  await expect(badge(one)).toHaveText(/^1\b/);
  await expect(badge(two)).toHaveText(/^1\b/);

  // Opening room one from the list reads its mention: the bell drops to one.
  await a.locator(id(T.roomList)).getByText(`# ${one}`).click();
  await expect(a.locator(id(T.messageBody)).last()).toHaveText(`@${uma} in one`);
  await expect(bell).toHaveText('1');
  await expect(badge(one)).toHaveCount(0);

  // "Mark all read" reads room two as well.
  await a.click('[data-testid="bell"]');
  await a.click('[data-testid="mark-all-read"]');
  await expect(bell).toHaveCount(0);
  await expect(badge(two)).toHaveCount(0);
  // And so it stays after a reload: the server holds it.
  await a.reload();
  await hydrated(a);
  await expect(bell).toHaveCount(0);
  await expect(badge(two)).toHaveCount(0);
});

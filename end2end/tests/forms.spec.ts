// Issue 18, item 10: the forms say what is wrong, next to the field, in the same words with and
// without JavaScript; the room form starts afresh; leaving a private room asks first.
import { test, expect } from '@playwright/test';
import { hydrated, signIn, run, shot } from './helpers';
import { T, id } from './testids';

test('empty sign-in fields say what is missing, under the field, which gets the focus', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.click('button[type="submit"]');
  const userError = page.locator(id(T.authUsernameError));
  await expect(userError).toHaveText('Enter your username.');
  await expect(page.locator('#username')).toHaveAttribute('aria-describedby', 'username-error');
  await expect(page.locator('#username')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('#username')).toBeFocused();
  await expect(page.locator(id(T.authError))).toBeHidden();

  await page.fill('#username', `someone${run}`);
  await page.keyboard.press('Enter');
  await expect(page.locator(id(T.authPasswordError))).toHaveText('Enter your password.');
  await expect(userError).toBeHidden();
  await expect(page.locator('#password')).toHaveAttribute('aria-describedby', 'password-error');
  await expect(page.locator('#password')).toBeFocused();
  await shot(page, 'sign-in-missing-password.png');

  // A wrong password is about the form as a whole: said above, the focus back on the username.
  await page.fill('#password', 'not the password');
  await page.keyboard.press('Enter');
  await expect(page.locator(id(T.authError))).toHaveText('Wrong username or password.');
  await expect(page.locator('#username')).toBeFocused();
  await expect(page.locator('#username')).toHaveAttribute('aria-describedby', 'auth-error');
});

test('the form without JavaScript uses the same words in the same places', async ({ browser }) => {
  // The hydrated form's words first.
  const live = await browser.newPage();
  await live.goto('/signup');
  await hydrated(live);
  await live.fill('#username', 'ab');
  await live.fill('#password', 'correct horse battery');
  await live.click('button[type="submit"]');
  const hydratedWords = await live.locator(id(T.authUsernameError)).textContent();
  expect(hydratedWords).toContain('3 to 32 characters');
  await live.fill('#username', `ok${run}`);
  await live.fill('#password', 'short');
  await live.click('button[type="submit"]');
  const hydratedPasswordWords = await live.locator(id(T.authPasswordError)).textContent();
  await live.goto('/login');
  await hydrated(live);
  await live.click('button[type="submit"]');
  const hydratedEmpty = await live.locator(id(T.authUsernameError)).textContent();
  await live.close();

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/signup');
  await page.fill('#username', 'ab');
  await page.fill('#password', 'correct horse battery');
  await page.click('button[type="submit"]');
  await expect(page).toHaveURL(/\/signup\?error=invalid_username$/);
  await expect(page.locator(id(T.authUsernameError))).toHaveText(hydratedWords!);
  await expect(page.locator('#username')).toHaveAttribute('aria-describedby', 'username-error');
  await expect(page.locator('#username')).toBeFocused();

  await page.fill('#username', `ok${run}`);
  await page.fill('#password', 'short');
  await page.click('button[type="submit"]');
  await expect(page).toHaveURL(/\/signup\?error=invalid_password$/);
  await expect(page.locator(id(T.authPasswordError))).toHaveText(hydratedPasswordWords!);
  await expect(page.locator('#password')).toBeFocused();

  await page.goto('/login');
  await page.click('button[type="submit"]');
  await expect(page).toHaveURL(/\/login\?error=username_required$/);
  await expect(page.locator(id(T.authUsernameError))).toHaveText(hydratedEmpty!);
  await expect(page.locator('#username')).toBeFocused();
  await page.fill('#username', `someone${run}`);
  await page.click('button[type="submit"]');
  await expect(page).toHaveURL(/\/login\?error=password_required$/);
  await expect(page.locator(id(T.authPasswordError))).toHaveText('Enter your password.');
  await expect(page.locator('#password')).toBeFocused();
  await shot(page, 'sign-in-no-js-missing-password.png');
  await context.close();
});

test('the room form starts afresh, and a taken public name is said under the name field', async ({ browser }) => {
  const page = await signIn(browser, `rosa${run}`);
  const privateName = `hideout-${run}`;
  await page.fill(id(T.newRoomName), privateName);
  await page.check(id(T.newRoomPrivate));
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(privateName);
  await expect(page.locator(id(T.newRoomPrivate))).not.toBeChecked();
  await expect(page.locator(id(T.newRoomName))).toHaveValue('');

  const publicName = `Plaza-${run}`;
  await page.fill(id(T.newRoomName), publicName);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(publicName);

  // The same name in other letters' case is taken.
  await page.fill(id(T.newRoomName), publicName.toLowerCase());
  await page.click(id(T.newRoomSubmit));
  const error = page.locator(id(T.newRoomError));
  await expect(error).toHaveText(`There is already a public room called “${publicName}”. Join it, or pick another name.`);
  await expect(page.locator(id(T.newRoomName))).toHaveAttribute('aria-describedby', 'new-room-error');
  await expect(page.locator('#new-room')).toBeFocused();
  await shot(page, 'room-name-taken.png');
  // Typing again clears it; an empty name is said too.
  await page.fill(id(T.newRoomName), '');
  await expect(error).toBeHidden();
  await page.click(id(T.newRoomSubmit));
  await expect(error).toHaveText('A room needs a name.');
});

test('leaving a private room asks first, and the keyboard can answer', async ({ browser }) => {
  const page = await signIn(browser, `lena${run}`);
  const name = `quiet-${run}`;
  await page.fill(id(T.newRoomName), name);
  await page.check(id(T.newRoomPrivate));
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(name);

  // Asked; Escape keeps the room and gives the focus back to Leave.
  await page.focus(id(T.leaveRoom));
  await page.keyboard.press('Enter');
  const confirm = page.locator(id(T.leaveConfirm));
  await expect(confirm).toBeVisible();
  await expect(confirm).toContainText(`Leave #${name}? It is private`);
  await expect(confirm).toHaveAttribute('role', 'alertdialog');
  await expect(page.locator(id(T.leaveConfirmNo))).toBeFocused();
  await shot(page, 'leave-private-confirm.png');
  await page.keyboard.press('Escape');
  await expect(confirm).toBeHidden();
  await expect(page.locator(id(T.leaveRoom))).toBeFocused();
  await expect(page.locator(id(T.roomTitle))).toContainText(name);

  // Asked again; "Stay" is the focus, the button before it leaves.
  await page.keyboard.press('Enter');
  await expect(page.locator(id(T.leaveConfirmNo))).toBeFocused();
  await page.keyboard.press('Shift+Tab');
  await expect(page.locator(id(T.leaveConfirmYes))).toBeFocused();
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/');
  await expect(page.locator(id(T.roomList))).not.toContainText(name);

  // A public room is left at once (anyone can come back).
  const open = `open-${run}`;
  await page.fill(id(T.newRoomName), open);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(open);
  await page.click(id(T.leaveRoom));
  await page.waitForURL((u) => u.pathname === '/');
  await expect(page.locator(id(T.leaveConfirm))).toHaveCount(0);
});

test('the message and invite forms say what is wrong under their field', async ({ browser }) => {
  const page = await signIn(browser, `ivo${run}`);
  // Direct message: nothing typed, then nobody by that name.
  await page.click(id(T.dmSubmit));
  const dmError = page.locator(id(T.dmError));
  await expect(dmError).toHaveText('Enter a username.');
  await expect(page.locator(id(T.dmUsername))).toBeFocused();
  await page.fill(id(T.dmUsername), `ghost${run}`);
  await expect(dmError).toBeHidden();
  await page.keyboard.press('Enter');
  await expect(dmError).toHaveText(`Nobody is called ghost${run}.`);
  await expect(page.locator(id(T.dmUsername))).toHaveAttribute('aria-describedby', 'dm-error');

  // Invite, from the room's member panel.
  const name = `den-${run}`;
  await page.fill(id(T.newRoomName), name);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(name);
  await page.click(id(T.openMembers));
  await page.fill(id(T.inviteUsername), `ghost${run}`);
  await page.click(id(T.inviteSubmit));
  const inviteError = page.locator(id(T.inviteError));
  await expect(inviteError).toHaveText(`Nobody is called ghost${run}.`);
  await expect(page.locator(id(T.inviteUsername))).toBeFocused();
  await expect(page.locator(id(T.inviteUsername))).toHaveAttribute('aria-describedby', 'invite-error');
  await shot(page, 'invite-nobody.png');
});

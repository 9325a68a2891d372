// Rooms, members, people (issue 21): a rename and a topic seen live by another member, the
// member panel with presence, "bob joined" lines, a display name shown on the other screen, and
// a password change that signs the other session out while this one stays.
import { test, expect } from '@playwright/test';
import { hydrated, signIn, run, PASSWORD, shot } from './helpers';
import { T, id } from './testids';

test('two people: rename and topic live, members with presence, display name, password change', async ({ browser }) => {
  const aliceName = `rpada${run}`;
  const bobName = `rpbo${run}`;
  const alice = await signIn(browser, aliceName);
  const bob = await signIn(browser, bobName);

  // Alice makes a room; Bob joins it: Alice's timeline says so.
  const roomName = `plans-${run}`;
  await alice.fill(id(T.newRoomName), roomName);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# ${roomName}`);
  await expect(bob.locator(id(T.roomList)).getByText(`# ${roomName}`)).toBeVisible();
  await bob.locator(id(T.roomList)).getByText(`# ${roomName}`).click();
  await bob.click(id(T.joinRoom));
  await expect(bob.locator(id(T.composer))).toBeVisible();
  await expect(alice.locator(id(T.memberLine)).last()).toHaveText(`${bobName} joined`);
  await expect(alice.locator(id(T.openMembers))).toHaveText('2 members');

  // Alice renames the room and sets a topic; Bob sees both without a reload.
  await alice.click(id(T.openRoomSettings));
  await expect(alice.locator(id(T.roomSettings))).toBeVisible();
  // A bad name is refused under its field, and nothing changes.
  await alice.fill(id(T.roomNameInput), '   ');
  await alice.click(id(T.roomSettingsSave));
  await expect(alice.locator(id(T.roomSettingsError))).toHaveText('A room needs a name.');
  await alice.fill(id(T.roomNameInput), `launch-${run}`);
  await alice.fill(id(T.roomTopicInput), 'Friday launch, final checks');
  await alice.click(id(T.roomSettingsSave));
  await expect(alice.locator(id(T.roomSettings))).toBeHidden();
  await expect(bob.locator(id(T.roomTitle))).toHaveText(`# launch-${run}`);
  await expect(bob.locator(id(T.roomTopic))).toHaveText('Friday launch, final checks');
  await expect(bob.locator(id(T.roomList)).getByText(`# launch-${run}`)).toBeVisible();

  // Bob's member panel lists both, online; Escape closes it and gives focus back.
  await bob.click(id(T.openMembers));
  const panel = bob.locator(id(T.membersPanel));
  await expect(panel.locator(id(T.member))).toHaveCount(2);
  for (const who of [aliceName, bobName]) {
    await expect(panel.locator(`${id(T.member)}[data-username="${who}"] [data-testid="presence"]`)).toHaveClass(/\bonline\b/);
  }
  await expect(panel.locator(`${id(T.member)}[data-username="${bobName}"]`)).toContainText('you');
  await bob.keyboard.press('Escape');
  await expect(panel).toBeHidden();
  await expect(bob.locator(id(T.openMembers))).toBeFocused();

  // Alice takes a display name: Bob sees it on her messages, in the member list and typing.
  await alice.fill(id(T.composer), 'Checklist is in the doc');
  await alice.press(id(T.composer), 'Enter');
  await expect(bob.locator('.msg .author').last()).toHaveText(aliceName);
  await alice.click(id(T.openProfile));
  await expect(alice.locator(id(T.profilePanel))).toBeVisible();
  await alice.fill(id(T.displayNameInput), '');
  await alice.click(id(T.displayNameSave));
  await expect(alice.locator(id(T.displayNameError))).toHaveText('Enter a display name.');
  await alice.fill(id(T.displayNameInput), 'Ada Lovelace');
  await alice.click(id(T.displayNameSave));
  await expect(alice.locator(id(T.openProfile))).toContainText('Ada Lovelace');
  await expect(bob.locator('.msg .author').last()).toHaveText('Ada Lovelace');
  // Who reacted is named by display name too, live and after a reload.
  await alice.keyboard.press('Escape');
  const last = alice.locator(id(T.message)).last();
  await last.hover();
  await last.locator(id(T.messageReact)).click();
  await alice.fill(id(T.emojiSearch), 'tada');
  await alice.press(id(T.emojiSearch), 'Enter');
  const chip = bob.locator(id(T.message)).last().locator(id(T.reactionChip));
  await expect(chip).toHaveAttribute('title', 'Ada Lovelace reacted with :tada:');
  await bob.reload();
  await hydrated(bob);
  await expect(chip).toHaveAttribute('title', 'Ada Lovelace reacted with :tada:');
  await alice.click(id(T.openProfile));
  await bob.click(id(T.openMembers));
  await expect(panel.locator(`${id(T.member)}[data-username="${aliceName}"] .name`)).toHaveText('Ada Lovelace');
  await bob.screenshot({ path: `${__dirname}/../screenshots/members-panel.png` });
  await bob.keyboard.press('Escape');
  await alice.keyboard.press('Escape');
  await expect(alice.locator(id(T.profilePanel))).toBeHidden();
  await alice.locator(id(T.composer)).pressSequentially('More soon');
  await expect(bob.locator(id(T.typing))).toHaveText('Ada Lovelace is typing…');

  // Alice has a second tab (another session); she changes her password in the first.
  const phone = await signIn(browser, aliceName, false);
  await alice.click(id(T.openProfile));
  await alice.fill(id(T.currentPassword), 'not my password');
  await alice.fill(id(T.newPassword), 'a brand new password');
  await alice.click(id(T.passwordSave));
  await expect(alice.locator(id(T.passwordError))).toHaveText(/current password is not right/i);
  await alice.fill(id(T.currentPassword), PASSWORD);
  await alice.click(id(T.passwordSave));
  await expect(alice.locator(id(T.notice))).toContainText('Password changed');
  // The other session is signed out at once; this one goes on, live.
  await expect(phone).toHaveURL(/\/login$/);
  await expect(alice.locator(id(T.connection))).toContainText('· live');
  await alice.keyboard.press('Escape');
  await alice.fill(id(T.composer), 'Still here after the change');
  await alice.press(id(T.composer), 'Enter');
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('Still here after the change');
  await expect(alice.locator(id(T.messageBody)).last()).toHaveText('Still here after the change');
  await alice.reload();
  await hydrated(alice);
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# launch-${run}`);

  // Bob leaves: Alice's timeline says so, and the count follows.
  await bob.click(id(T.leaveRoom));
  await expect(alice.locator(id(T.memberLine)).last()).toHaveText(`${bobName} left`);
  await expect(alice.locator(id(T.openMembers))).toHaveText('1 member');
  // The lines are part of the room's history: a reload brings them back, once each.
  await alice.reload();
  await hydrated(alice);
  await expect(alice.locator(id(T.memberLine)).last()).toHaveText(`${bobName} left`);
  await expect(alice.locator(id(T.memberLine), { hasText: `${bobName} left` })).toHaveCount(1);
  await shot(alice, 'rooms-people-alice.png');
});

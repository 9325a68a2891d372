// Issue 18, item 11: the admin and jobs screens speak human: the audit log in sentences naming
// people, notifications with their time, an export named by its room.
import { test, expect } from '@playwright/test';
import { signIn, run, shot } from './helpers';
import { T, id } from './testids';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

test('the audit log names people and says what changed', async ({ browser }) => {
  const who = `audra${run}`;
  const user = await signIn(browser, who);
  const me = await user.evaluate(async () => (await fetch('/api/me')).json());
  const admin = await signIn(browser, 'e2eadmin', false);
  const status = await admin.evaluate(async (userId) => {
    const put = (url: string, body: unknown) =>
      fetch(url, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    // Set and cleared again, so later tests see this user's own choice.
    const a = await put(`/api/admin/users/${userId}/transports`, { chat: 'long_poll' });
    const b = await put(`/api/admin/users/${userId}/transports`, { chat: null });
    return [a.status, b.status];
  }, me.id);
  expect(status).toEqual([200, 200]);
  await admin.click('[data-testid="admin-link"]');
  const log = admin.locator('[data-testid="audit-log"]');
  await expect(log).toContainText(`e2eadmin set ${who}'s chat transport to long polling`);
  await expect(log).toContainText(`e2eadmin let ${who} choose their chat transport again`);
  const text = (await log.textContent()) ?? '';
  expect(text).not.toMatch(UUID);
  expect(text).not.toContain('{');
  await expect(log.locator('[data-testid="audit-entry"] time').first()).toHaveAttribute(
    'datetime',
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
  );
  await log.scrollIntoViewIfNeeded();
  await shot(admin, 'audit-log.png');
});

test('an export is named by its room, and its notification shows when it happened', async ({ browser }) => {
  const page = await signIn(browser, `exa${run}`);
  const room = `archive-${run}`;
  await page.fill(id(T.newRoomName), room);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(room);
  await page.fill(id(T.composer), 'one thing to keep');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody)).last()).toHaveText('one thing to keep');
  await page.click('[data-testid="export-room"]');
  await page.waitForURL((u) => u.pathname === '/jobs');
  const job = page.locator('[data-testid="job"]').first();
  await expect(job.locator('[data-testid="job-title"]')).toHaveText(`Export of #${room}`);
  await expect(job).toHaveAttribute('data-state', 'done');
  await expect(job).toContainText(`Exported 1 message from #${room}`);
  await expect(job.locator('[data-testid="job-count"]')).toHaveText('1 / 1 message');
  await shot(page, 'export-job.png');

  await page.click('[data-testid="bell"]');
  const note = page.locator('[data-testid="notification"]').filter({ hasText: `Your export of #${room} finished` });
  await expect(note).toHaveCount(1);
  const time = note.locator('[data-testid="notification-time"]');
  await expect(time).toHaveText(/just now|min ago/);
  const iso = await time.getAttribute('datetime');
  expect(iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const age = Date.now() - Date.parse(iso!);
  console.log(`notification time ${iso}, ${age} ms before the check`);
  expect(Math.abs(age)).toBeLessThan(10 * 60_000);
  await shot(page, 'notification-time.png');
});

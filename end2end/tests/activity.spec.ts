import { test, expect, type Page, type Browser } from '@playwright/test';
import { hydrated, signIn, run, PASSWORD, SHOTS } from './helpers';
import * as path from 'node:path';
import { T, id } from './testids';

test('a mention rings the bell and shows a toast on another page, without a reload', async ({ browser }) => {
  const ann = `ann${run}`;
  const a = await signIn(browser, ann);
  const b = await signIn(browser, `ben${run}`);
  const room = `mentions-${run}`;
  await a.fill(id(T.newRoomName), room);
  await a.click(id(T.newRoomSubmit));
  await b.reload();
  await hydrated(b);
  await b.locator(id(T.roomList)).getByText(`# ${room}`).click();
  await b.click(id(T.joinRoom));
  await expect(b.locator(id(T.composer))).toBeVisible();

  // Ann moves to the jobs page; notifications ride SSE there as everywhere.
  await a.click('[data-testid="jobs-link"]');
  await expect(a.locator('[data-testid="jobs-page"]')).toBeVisible();
  await expect(a.locator('[data-testid="bell-badge"]')).toHaveCount(0);

  await b.fill(id(T.composer), `hello @${ann}, look at this`);
  await b.press(id(T.composer), 'Enter');

  await expect(a.locator('[data-testid="bell-badge"]')).toHaveText('1');
  await expect(a.locator('[data-testid="toast"]')).toContainText(`ben${run} mentioned you`);
  await expect(a).toHaveTitle(/^\(1\) Switchboard/);
  await a.click('[data-testid="bell"]');
  await expect(a.locator('[data-testid="notification"]').first()).toContainText(`look at this`);
  await a.screenshot({ path: path.join(SHOTS, 'notifications-panel.png') });

  // A click opens the room and marks it read.
  await a.locator('[data-testid="notification"] button').first().click();
  await expect(a.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  await expect(a.locator('[data-testid="bell-badge"]')).toHaveCount(0);
  await expect(a.locator('.msg.mentions-me')).toHaveCount(1);
});

test('a demo job runs to 100% on the jobs page', async ({ browser }) => {
  const page = await signIn(browser, `jo${run}`);
  await page.click('[data-testid="jobs-link"]');
  await page.fill('[data-testid="demo-steps"]', '5');
  await page.fill('[data-testid="demo-step-ms"]', '200');
  await page.click('[data-testid="start-demo"]');
  const job = page.locator('[data-testid="job"]').first();
  await expect(job).toHaveAttribute('data-state', /queued|running/);
  await expect(job).toHaveAttribute('data-state', 'done');
  await expect(job.locator('[data-testid="job-count"]')).toHaveText('5 / 5 steps');
  await expect(job.locator('progress')).toHaveAttribute('value', '1');
  // Progress survives a reload.
  await page.reload();
  await hydrated(page);
  await expect(page.locator('[data-testid="job"]').first()).toHaveAttribute('data-state', 'done');
  // And a second one can be cancelled.
  await page.fill('[data-testid="demo-steps"]', '100');
  await page.fill('[data-testid="demo-step-ms"]', '500');
  await page.click('[data-testid="start-demo"]');
  const second = page.locator('[data-testid="job"]').first();
  await expect(second).toHaveAttribute('data-state', 'running');
  // The header's tray shows it from anywhere.
  await expect(page.locator('[data-testid="jobs-link"] progress.tray')).toBeVisible();
  await page.screenshot({ path: path.join(SHOTS, 'jobs-running.png') });
  await second.locator('[data-testid="job-cancel"]').click();
  await expect(second.locator('[data-testid="job-state"]')).toHaveText(/Cancelling…|Cancelled/);
  await expect(second).toHaveAttribute('data-state', 'cancelled');
  await page.screenshot({ path: path.join(SHOTS, 'jobs-page.png') });
});

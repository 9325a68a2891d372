import { test, expect } from '@playwright/test';
import { signIn, run, shot } from './helpers';
import { T, id } from './testids';

const TRANSPORTS = ['websocket', 'sse', 'long_poll', 'short_poll'];

test('race lanes: one burst arrives in all four lanes with identical ids', async ({ browser }) => {
  const page = await signIn(browser, `rhea${run}`);
  const room = `race-${run}`;
  await page.fill(id(T.newRoomName), room);
  await page.click(id(T.newRoomSubmit));
  await expect(page.locator(id(T.roomTitle))).toContainText(room);

  // The inspector next to the room's transport picker: latency, requests, integrity.
  await page.fill(id(T.composer), 'warming up');
  await page.press(id(T.composer), 'Enter');
  await expect(page.locator(id(T.messageBody)).last()).toHaveText('warming up');
  await page.click('[data-testid="inspector-chat"] summary');
  const inspector = page.locator('[data-testid="inspector-readout-chat"]');
  await expect(inspector).toBeVisible();
  await expect(inspector.locator('[data-testid="integrity"]')).toContainText('no gaps, no duplicates');
  await expect(inspector.locator('[data-testid="requests"]')).toContainText('/min');
  await shot(page, 'inspector.png');
  await page.click('[data-testid="inspector-chat"] summary');

  await page.click('[data-testid="race-link"]');
  await expect(page.locator('[data-testid="race-page"]')).toBeVisible();
  for (const t of TRANSPORTS) {
    await expect(page.locator(`[data-testid="lane-${t}"] p`)).toHaveText('live');
  }
  await page.click('[data-testid="race-burst"]');
  // The burst goes to a private room of Rhea's own, not to a room other people read.
  await expect(page.locator('[data-testid="race-room"]')).toContainText(`#race-rhea${run}, a private room of your own`);

  // Every lane gets the whole burst, in order, with the same ids.
  const ids: Record<string, string[]> = {};
  for (const t of TRANSPORTS) {
    const lane = page.locator(`[data-testid="lane-${t}"] [data-testid="arrival"]`);
    await expect(lane.filter({ hasText: 'race 10/10' })).toHaveCount(1);
    ids[t] = await lane.evaluateAll((els) =>
      els
        .filter((e) => /race \d+\/10/.test(e.textContent ?? ''))
        .map((e) => e.getAttribute('data-id') ?? ''),
    );
    expect(ids[t]).toHaveLength(10);
  }
  for (const t of TRANSPORTS) expect(ids[t]).toEqual(ids.websocket);
  // Newest first, strictly decreasing: in order, no repeats.
  const n = ids.websocket.map(Number);
  expect(n).toEqual([...n].sort((a, b) => b - a));
  expect(new Set(n).size).toBe(10);
  // The table: polling made requests (short polling many, some empty); streams one each.
  await expect(page.locator('[data-testid="race-row-websocket"] [data-testid="requests"]')).toHaveText('1');
  await expect(page.locator('[data-testid="race-row-sse"] [data-testid="requests"]')).toHaveText('1');
  const polls = Number(await page.locator('[data-testid="race-row-long_poll"] [data-testid="requests"]').textContent());
  expect(polls).toBeGreaterThanOrEqual(2);
  await shot(page, 'race-lanes.png');

  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'race-lanes-narrow.png');
});

test('the admin console shows the live comparison with charts and browser-measured latency', async ({ browser }) => {
  const admin = await signIn(browser, 'e2eadmin', false);
  await admin.click('[data-testid="admin-link"]');
  await expect(admin.locator('[data-testid="metrics-feed-state"]')).toContainText('pushed every second');
  // The server's own health line: connections, hub subscriptions and the writer's batching.
  await expect(admin.locator('[data-testid="server-health"]')).toContainText(/\d+ open connections?/);
  await expect(admin.locator('[data-testid="cluster-health"]')).toContainText('Cluster: a single server');
  await expect(admin.locator('[data-testid="server-health"]')).toContainText(/[1-9]\d* messages? in [1-9]\d* transactions?/);
  for (const chart of ['chart-rates', 'chart-latency', 'chart-cost']) {
    await expect(admin.locator(`[data-testid="${chart}"] svg`)).toBeVisible();
  }
  // Browsers report what they measured every 10 s: the earlier tests' WebSocket traffic shows
  // up as a commit-to-screen figure, and no browser reported a gap or a duplicate.
  await expect(admin.locator('[data-testid="m-websocket-c50"]')).toHaveText(/^\d+\.\d$/, { timeout: 30_000 });
  // A few pushed snapshots draw the request-rate lines.
  await expect(admin.locator('[data-testid="chart-rates"] polyline.s-short_poll')).toHaveAttribute('points', /(\S+ ){3}/);
  for (const t of TRANSPORTS) {
    await expect(admin.locator(`[data-testid="m-${t}-faults"]`)).toHaveText('0');
  }
  await shot(admin, 'admin-console-charts.png');
  await admin.emulateMedia({ colorScheme: 'dark' });
  await shot(admin, 'admin-console-dark.png');
  await admin.setViewportSize({ width: 390, height: 844 });
  await shot(admin, 'admin-console-narrow.png');
});

// Attachments between two people: Alice's files reach Bob's screen live: an image as a thumbnail
// that opens the full picture, any other file as a chip with its name and size. The first test
// uploads through the API; the second through the composer, as people do: a drop on the room,
// the file picker, a paste, with progress, Cancel, and the server's refusal in words.
import { test, expect, type Browser, type Page } from '@playwright/test';
import { hydrated, signIn, run, shot } from './helpers';
import { T, id } from './testids';

// A 64 × 40 PNG, all orange.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAEAAAAAoCAIAAADBrGu+AAAAPUlEQVR42u3PQQkAAAgEsItjWMMawQw+hcEKLNP1WgQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQELhaOEmjx7qb4lgAAAABJRU5ErkJggg==', 'base64');

/** Alice made a room and Bob joined it; both have it open. */
async function pairInRoom(browser: Browser, tag: string) {
  // Names no other spec uses (the suite's specs share one run suffix).
  const alice = await signIn(browser, `fal${tag}${run}`);
  const bob = await signIn(browser, `fbo${tag}${run}`);
  const room = `files-${tag}-${run}`;
  await alice.fill(id(T.newRoomName), room);
  await alice.click(id(T.newRoomSubmit));
  await expect(alice.locator(id(T.roomTitle))).toHaveText(`# ${room}`);
  const roomId = new URL(alice.url()).pathname.split('/').pop()!;
  await bob.reload();
  await hydrated(bob);
  await bob.locator(id(T.roomList)).getByText(`# ${room}`).click();
  await bob.click(id(T.joinRoom));
  await expect(bob.locator(id(T.composer))).toBeVisible();
  return { alice, bob, roomId };
}

test('an image and a file sent by one person show on the other person\'s screen', async ({ browser }) => {
  const { alice, bob, roomId } = await pairInRoom(browser, 'a');

  const origin = new URL(alice.url()).origin;
  const headers = { Origin: origin };
  const pic = await alice.request.post('/api/uploads?name=sunset.png', {
    headers: { ...headers, 'Content-Type': 'image/png' },
    data: PNG,
  });
  expect(pic.status()).toBe(201);
  const doc = await alice.request.post('/api/uploads?name=notes.txt', {
    headers: { ...headers, 'Content-Type': 'text/plain' },
    data: Buffer.from('plans for the weekend'),
  });
  expect(doc.status()).toBe(201);
  const sent = await alice.request.post(`/api/rooms/${roomId}/messages`, {
    headers,
    data: { body: 'two files', client_id: `c${run}`, attachments: [(await pic.json()).id, (await doc.json()).id] },
  });
  expect(sent.status()).toBe(201);

  for (const page of [bob, alice]) {
    const image = page.locator(`${id(T.attachmentImage)} img`);
    await expect(image).toHaveAttribute('alt', 'sunset.png');
    // The thumbnail really loaded (the server made it, and the member may fetch it).
    await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(64);
    await expect(page.locator(id(T.attachmentFile))).toContainText('notes.txt');
    await expect(page.locator(id(T.attachmentFile))).toContainText('21 bytes');
  }
  await shot(bob, 'attachments-bob.png');
});

/** A PNG drawn in the page (`w` × `h`, one colour), as a File in a DataTransfer: what a drop or a
 * paste carries. */
function pictureTransfer(page: Page, name: string, w: number, h: number) {
  return page.evaluateHandle(
    async ([name, w, h]) => {
      const canvas = document.createElement('canvas');
      canvas.width = w as number;
      canvas.height = h as number;
      const g = canvas.getContext('2d')!;
      g.fillStyle = '#2a9d8f';
      g.fillRect(0, 0, w as number, h as number);
      const blob: Blob = await new Promise((ok) => canvas.toBlob((b) => ok(b!), 'image/png'));
      const dt = new DataTransfer();
      dt.items.add(new File([blob], name as string, { type: 'image/png' }));
      return dt;
    },
    [name, w, h],
  );
}

test('files go in by drop, picker and paste, with progress and Cancel, and reach the other person', async ({ browser }) => {
  const { alice, bob } = await pairInRoom(browser, 'd');
  const pending = alice.locator(id(T.pendingFile));

  // A picture dropped on the room: the drop target shows while it is dragged over.
  const drop = await pictureTransfer(alice, 'harbour.png', 200, 120);
  await alice.dispatchEvent(id(T.messages), 'dragenter', { dataTransfer: drop });
  await expect(alice.locator(id(T.dropZone))).toBeVisible();
  await alice.dispatchEvent(id(T.dropZone), 'drop', { dataTransfer: drop });
  await expect(alice.locator(id(T.dropZone))).toHaveCount(0);
  await expect(pending).toHaveCount(1);
  await expect(pending).toContainText('harbour.png');
  await expect(pending).toContainText('ready');
  await alice.fill(id(T.composer), 'The harbour this morning');
  await alice.press(id(T.composer), 'Enter');
  await expect(pending).toHaveCount(0);
  const thumb = bob.locator(`${id(T.attachmentImage)} img`);
  await expect(thumb).toHaveAttribute('alt', 'harbour.png');
  await expect.poll(() => thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(200);
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('The harbour this morning');

  // Bob opens it full size, and Escape brings him back to the thumbnail.
  await bob.click(id(T.attachmentImage));
  const viewer = bob.locator(id(T.imageViewer));
  await expect(viewer).toBeVisible();
  await expect(viewer).toContainText('200 × 120');
  await expect.poll(() => viewer.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(200);
  await expect(bob.locator(id(T.imageViewerClose))).toBeFocused();
  await shot(bob, 'attachments-viewer.png');
  await bob.keyboard.press('Escape');
  await expect(viewer).toHaveCount(0);
  await expect(bob.locator(id(T.attachmentImage))).toBeFocused();

  // A file from the picker, sent with no words: a chip on Bob's screen.
  await alice.setInputFiles(id(T.attachInput), { name: 'agenda.txt', mimeType: 'text/plain', buffer: Buffer.from('1. boats\n2. lunch\n') });
  await expect(pending).toContainText('ready');
  await alice.press(id(T.composer), 'Enter');
  await expect(bob.locator(id(T.attachmentFile))).toContainText('agenda.txt');
  await expect(bob.locator(id(T.attachmentFile))).toContainText('18 bytes');

  // A pasted picture waits in the composer, and stays there over a reload until it is sent.
  const paste = await pictureTransfer(alice, 'pasted.png', 40, 30);
  await alice.locator(id(T.composer)).evaluate((el, dt) => {
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt as DataTransfer, bubbles: true, cancelable: true }));
  }, paste);
  await expect(pending).toContainText('pasted.png');
  await expect(pending).toContainText('ready');
  await alice.reload();
  await hydrated(alice);
  await expect(pending).toContainText('pasted.png');
  await pending.locator(id(T.pendingCancel)).click();
  await expect(pending).toHaveCount(0);

  // Over the server's limit (10 MiB): refused, in words that name the limit.
  await alice.setInputFiles(id(T.attachInput), { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(11 * 1024 * 1024) });
  await expect(pending.locator(id(T.pendingError))).toContainText('10 MiB');
  await pending.locator(id(T.pendingCancel)).click();
  await expect(pending).toHaveCount(0);

  // On a slow link the bar moves, Send waits, and Cancel stops the upload: nothing is sent.
  const cdp = await alice.context().newCDPSession(alice);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  await alice.setInputFiles(id(T.attachInput), { name: 'video.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(4 * 1024 * 1024, 7) });
  const bar = pending.locator(id(T.pendingProgress));
  await expect(bar).toBeVisible();
  await expect.poll(() => bar.evaluate((p: HTMLProgressElement) => p.value)).toBeGreaterThan(0);
  await expect(alice.locator(id(T.send))).toHaveText('Uploading…');
  await shot(alice, 'attachments-uploading.png');
  await pending.locator(id(T.pendingCancel)).click();
  await expect(pending).toHaveCount(0);
  await expect(alice.locator(id(T.send))).toHaveText('Send');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await alice.fill(id(T.composer), 'no video after all');
  await alice.press(id(T.composer), 'Enter');
  await expect(bob.locator(id(T.messageBody)).last()).toHaveText('no video after all');
  await expect(bob.locator(id(T.attachmentFile))).toHaveCount(1);
  await alice.context().close();
  await bob.context().close();
});

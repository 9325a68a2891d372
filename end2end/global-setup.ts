// Creates the run's administrator as the very first account of the (fresh) database.
import type { FullConfig } from '@playwright/test';

export const ADMIN = 'e2eadmin';
export const ADMIN_PASSWORD = 'correct horse battery';

export default async function globalSetup(config: FullConfig) {
  const base = config.projects[0].use.baseURL as string;
  const r = await fetch(`${base}/api/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: ADMIN, password: ADMIN_PASSWORD }),
  });
  if (r.status !== 201 && r.status !== 409) {
    throw new Error(`creating the admin: ${r.status} ${await r.text()}`);
  }
}

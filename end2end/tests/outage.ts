// A server of a test's own, which the test can stop and start again: same binary, same port,
// same SQLite file, independent of the suite's main server (SWITCHBOARD_URL). Its first account
// is its administrator. The binary is $SWITCHBOARD_BIN (scripts/test.sh sets it), else
// ../target/debug/switchboard relative to end2end/.
import type { Browser, Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { signIn } from './helpers';

/** The repository: the server runs from here, as scripts/test.sh runs it (it serves target/site). */
const ROOT = path.join(__dirname, '..', '..');
const BIN = process.env.SWITCHBOARD_BIN ?? path.join(ROOT, 'target', 'debug', 'switchboard');

/** How long a start may take before the test gives up (a cold debug build migrates first). */
const START_TIMEOUT_MS = 60_000;

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export class OwnServer {
  readonly url: string;
  private proc: ChildProcess | null = null;
  private log = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** A new server on a free port with a fresh database, answering /healthz. */
  static async start(): Promise<OwnServer> {
    if (!fs.existsSync(BIN)) {
      throw new Error(`no server binary at ${BIN}: build it (cargo run -p xtask -- build) or set SWITCHBOARD_BIN`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-outage-'));
    const server = new OwnServer(await freePort(), dir);
    await server.up();
    return server;
  }

  /** Starts the process (again) and waits until /healthz answers; returns that moment (ms). */
  async up(): Promise<number> {
    if (this.proc) throw new Error('already running');
    const proc = spawn(
      BIN,
      ['--addr', `127.0.0.1:${this.port}`, '--database-url', `sqlite://${this.dir}/outage.db`, '--log', 'warn'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout?.on('data', (d) => (this.log += d));
    proc.stderr?.on('data', (d) => (this.log += d));
    this.proc = proc;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        this.proc = null;
        throw new Error(`the server exited while starting:\n${this.log}`);
      }
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return Date.now();
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`the server did not answer /healthz:\n${this.log}`);
      // Asking again: the condition waited on is /healthz answering.
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops it hard (SIGKILL, like a crash or a pulled cable) and waits until it is gone. */
  async down(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
  }

  /** Stops it and removes its database. */
  async close(): Promise<void> {
    await this.down();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A new browser context on `base`, signed up (or in) as `name`, on the chat screen, live. */
export function signInAt(browser: Browser, base: string, name: string, signup = true): Promise<Page> {
  return signIn(browser, name, signup, base);
}

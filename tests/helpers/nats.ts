import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { NatsBrokerOptions } from '../../src/brokers/nats/nats-broker.js';
import type { Logger } from '../../src/util/logger.js';
import { harnessSettings, NATS_SERVER, natsProblem, startSharedNatsServer } from '../../scripts/brokers/index.js';
import { reachable } from './brokers.js';
import { waitFor } from './events.js';

const execFileAsync = promisify(execFile);

/** The machine's shared nats-server with JetStream (scripts/brokers/): nats://127.0.0.1:4222 unless `NATS_URL` says otherwise. */
export const NATS_URL = harnessSettings().natsUrl;
export const NATS_HOST = new URL(NATS_URL).hostname;
export const NATS_PORT = Number(new URL(NATS_URL).port || 4222);
export const NATS_STREAM = 'EVENTS';

/**
 * Tests keep the shared server's stream from growing run after run: what they publish ages out
 * after six hours (the same setting on every test connection, so no test flips it back).
 */
const TEST_MAX_AGE_MS = 6 * 3600 * 1000;

export function natsOptions(overrides: Partial<NatsBrokerOptions> = {}): NatsBrokerOptions {
  return { url: NATS_URL, stream: NATS_STREAM, jetstream: 'required', maxAgeMs: TEST_MAX_AGE_MS, topics: {}, ...overrides };
}

/** A plain client, as another application would use it. */
export async function plainClient(url = NATS_URL): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await connect({ servers: url });
  return { nc, jsm: await jetstreamManager(nc) };
}

/** A logger whose JSON lines the test can read. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/** True when the server at `url` serves JetStream API requests. */
export async function natsAnswers(url = NATS_URL): Promise<boolean> {
  return (await natsProblem(url)) === undefined;
}

/** The pid of the process listening on `port`, from the kernel's socket table. */
async function listeningPid(port: number): Promise<number> {
  const { stdout } = await execFileAsync('ss', ['-Htlnp', `sport = :${port}`]);
  const pid = /pid=(\d+)/.exec(stdout)?.[1];
  if (!pid) throw new Error(`nothing listens on port ${port}: ${stdout}`);
  return Number(pid);
}

/** Gone, or a zombie nobody reaped yet (start-stop-daemon does not count those as running). */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Stops the shared nats-server (SIGTERM: JetStream shuts down cleanly), keeps it down for
 * `downMs`, and starts it again with the machine's own command, always, even when stopping
 * failed: later tests and CI share it. Resolves once it serves JetStream again.
 */
export async function restartNatsServer({ downMs }: { downMs: number }): Promise<void> {
  try {
    const pid = await listeningPid(NATS_PORT);
    process.kill(pid, 'SIGTERM');
    await waitFor(() => processGone(pid), 30_000, `nats-server (pid ${pid}) to exit`);
    await new Promise((r) => setTimeout(r, downMs));
  } finally {
    await startSharedNatsServer(NATS_HOST, NATS_PORT);
    // --oknodo does nothing while another /usr/sbin/nats-server runs: say so rather than time out silently.
    await waitFor(() => natsAnswers(), 30_000, `nats-server on ${NATS_URL} to serve JetStream again (is another ${NATS_SERVER} running?)`);
  }
}

export interface OwnNatsServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM), waits `downMs`, and starts it again on the same port and store. */
  restart(options: { downMs: number }): Promise<void>;
  /** Stops it for good and deletes its store. */
  stop(): Promise<void>;
}

/**
 * A nats-server of the test's own on a free port: core only, or with JetStream in a temporary
 * store that survives `restart`. Never the shared server, so tests can stop it at will.
 */
export async function startOwnNatsServer(options: { jetstream: boolean; port?: number; args?: string[] }): Promise<OwnNatsServer> {
  const port = options.port ?? (await freePort());
  const store = options.jetstream ? mkdtempSync(join(tmpdir(), 'nats-js-')) : undefined;
  const args = ['-a', NATS_HOST, '-p', String(port), ...(store ? ['-js', '-sd', store] : []), ...(options.args ?? [])];
  let running = await launch(args, port);
  return {
    url: `nats://${NATS_HOST}:${port}`,
    port,
    async restart({ downMs }) {
      await running.stop();
      await new Promise((r) => setTimeout(r, downMs));
      running = await launch(args, port);
    },
    async stop() {
      await running.stop();
      if (store) rmSync(store, { recursive: true, force: true });
    },
  };
}

async function launch(args: string[], port: number): Promise<{ stop(): Promise<void> }> {
  const child = spawn(NATS_SERVER, args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => reachable(NATS_HOST, port, 200), 10_000, `own nats-server on port ${port}`);
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, NATS_HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

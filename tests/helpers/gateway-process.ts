import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './events.js';
import { WebhookRecorder } from './webhook-recorder.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A durable consumer as the `GATEWAY_CONFIG` file declares it. */
export interface ConsumerEntry {
  name: string;
  topic: string;
  webhook: { url: string; timeoutMs?: number };
  maxAttempts?: number;
  backoff?: { initialMs: number; maxMs: number; multiplier: number; jitter: number };
  prefetch?: number;
}

export interface GatewayOptions {
  /** `BROKER`. */
  broker: string;
  databasePath: string;
  consumers?: readonly ConsumerEntry[];
  /** More environment (RELAY_POLL_INTERVAL_MS, NATS_MAX_AGE_MS, …). */
  env?: Record<string, string>;
  /** Extra flags for node itself (`--cpu-prof`, …). */
  nodeArgs?: readonly string[];
  /**
   * What runs: `source` (default) is `src/main.ts` through tsx, as tests want it (no build step);
   * `built` is `dist/main.js` as `npm start` runs it (`npm run build` first), for benchmarks: tsx
   * keeps every function's name with a property of its own, which costs memory per closure.
   */
  entry?: 'source' | 'built';
}

export type LogLine = Record<string, unknown> & { msg?: string };

export interface GatewayProcess {
  readonly pid: number;
  readonly url: string;
  readonly port: number;
  /** Settles when the process has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  /** The JSON lines it logged so far. */
  logs(): LogLine[];
  stderr(): string;
  /** `kill -9`; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Sends SIGTERM and waits (at most `timeoutMs`) for the exit; `ms` is signal to exit. */
  terminate(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/**
 * Spawns the real gateway (`node --import tsx src/main.ts`), configured by its environment and a
 * config file with `consumers`, and resolves once it logged `event-gateway listening`.
 */
export async function startGateway(options: GatewayOptions & { configDir: string }, startTimeoutMs = 45_000): Promise<GatewayProcess> {
  const env: Record<string, string> = { BROKER: options.broker, PORT: '0', LOG_LEVEL: 'info', DATABASE_PATH: options.databasePath, ...options.env };
  if (options.consumers) {
    const file = join(options.configDir, `gateway-${randomUUID().slice(0, 8)}.json`);
    writeFileSync(file, JSON.stringify({ consumers: options.consumers }));
    env['GATEWAY_CONFIG'] = file;
  }
  const main = options.entry === 'built' ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...main], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  let partial = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as LogLine);
      } catch {
        lines.push({ msg: part });
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    }),
  );
  const listening = await Promise.race([
    waitFor(() => lines.find((l) => l.msg === 'event-gateway listening'), startTimeoutMs, `gateway (${options.broker}) to listen`),
    exited.then(({ code }) => {
      throw new Error(`gateway exited with ${code} before listening: ${stderr.slice(-2000)}`);
    }),
  ]).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  const url = String(listening['url']);
  const gateway: GatewayProcess = {
    pid: child.pid!,
    url,
    port: Number(new URL(url).port),
    exited,
    get running() {
      return alive;
    },
    logs: () => lines,
    stderr: () => stderr,
    async kill() {
      if (alive) child.kill('SIGKILL');
      await exited;
    },
    async terminate(timeoutMs) {
      const at = Date.now();
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]);
      clearTimeout(timer);
      if (!outcome) {
        await gateway.kill();
        throw new Error(`gateway did not exit within ${timeoutMs} ms of SIGTERM`);
      }
      return { ...outcome, ms: Date.now() - at };
    },
  };
  return gateway;
}

/**
 * What one test starts: gateway processes, a scratch folder for their databases and config files,
 * and webhook recorders. `dispose` (in a `finally`) SIGKILLs what still runs and removes the rest,
 * so concurrent tests clean up only their own.
 */
export class GatewayScope {
  readonly dir = mkdtempSync(join(tmpdir(), 'gw-fault-'));
  private readonly gateways: GatewayProcess[] = [];
  private readonly recorders: WebhookRecorder[] = [];

  /** A database path in this scope's folder. */
  database(name = 'gateway.db'): string {
    return join(this.dir, name);
  }

  async start(options: GatewayOptions): Promise<GatewayProcess> {
    const gateway = await startGateway({ ...options, configDir: this.dir });
    this.gateways.push(gateway);
    return gateway;
  }

  async recorder(): Promise<WebhookRecorder> {
    const recorder = await WebhookRecorder.start();
    this.recorders.push(recorder);
    return recorder;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.gateways.map((gateway) => gateway.kill()));
    await Promise.all(this.recorders.map((recorder) => recorder.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True once nothing accepts TCP connections on the port: a listener that was closed refuses. */
export function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

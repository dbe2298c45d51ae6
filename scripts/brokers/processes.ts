/**
 * The operating-system side of the harness: ports, processes and a lock between processes. Linux
 * only, like the brokers it runs.
 */
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls `check` every `intervalMs` until it is true (true) or `timeoutMs` passed (false). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * True while process `pid` exists and is not a finished zombie. A dead broker can stay an
 * unreaped zombie for a while (it was re-parented), and `kill(pid, 0)` still answers for it. But
 * a zombie main thread alone is not enough: right after SIGKILL the JVM's other threads are still
 * exiting and its sockets are still open, so it counts as dead only when no other thread is left.
 */
export function processAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') return true;
  try {
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false;
  }
}

/** The arguments process `pid` runs with, or undefined when it is gone. */
export function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/**
 * Takes an exclusive lock on `file` (flock(2), the same lock the former bash harness took, so the
 * two never raced during the switch) and resolves with its release. The lock is held by a `flock`
 * child whose stdin is our pipe: if this process dies, the pipe closes, the child exits and the
 * kernel drops the lock. A lock file with a pid in it would need stale-lock guessing instead.
 */
export async function holdLock(file: string, timeoutMs: number): Promise<() => Promise<void>> {
  const holder = spawn('flock', ['-w', String(Math.ceil(timeoutMs / 1000)), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => {
    holder.once('exit', (code) => resolve(code));
    holder.once('error', () => resolve(null));
  });
  const locked = await new Promise<boolean>((resolve) => {
    holder.stdout.once('data', () => resolve(true));
    void exited.then(() => resolve(false));
  });
  if (!locked) throw new Error(`could not lock ${file} within ${timeoutMs / 1000} s (another \`npm run brokers\` or test run holds it)`);
  holder.stdout.destroy();
  return async () => {
    holder.stdin.end();
    await exited;
  };
}

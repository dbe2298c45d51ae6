import { connect } from 'node:net';
import { it } from 'vitest';

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Decides whether a live-broker test file runs. On CI (`CI` set) an unreachable broker is an
 * error that fails the run; on a developer machine the file is skipped with a loud note. In the
 * unit tier (`TEST_TIER=unit`, set by vitest.config.ts) it always throws: that tier promises to
 * need no broker, so the file is in the wrong tier.
 */
export async function requireBroker(name: string, host: string, port: number): Promise<boolean> {
  return requireTool(name, await reachable(host, port), `${name} is not reachable on ${host}:${port} (npm run brokers up)`);
}

/** The same decision for a test file that needs something else live (a binary, Kafka's jars). */
export function requireTool(name: string, present: boolean, message: string): boolean {
  if (process.env['TEST_TIER'] === 'unit') {
    throw new Error(`this file needs ${name}, so it belongs in the brokers or faults tier: list it in vitest.config.ts`);
  }
  if (present) return true;
  if (process.env['CI']) throw new Error(`${message}; CI is set, so this fails the run`);
  process.stderr.write(`\n*** SKIPPING ${name} tests: ${message}\n`);
  // The caller registers no tests now; without one, vitest would count the file as failed.
  it.skip(`${name} tests: ${message}`, () => {});
  return false;
}

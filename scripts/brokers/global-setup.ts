/**
 * vitest's global setup for the projects that need live brokers (`brokers`, `faults`): runs
 * `npm run brokers up` in-process, so `npm test` brings its own Kafka on a fresh machine, then
 * asks every broker with its real client. A broker that does not answer fails the whole run when
 * `CI` is set; on a developer machine it is reported loudly, and each test file that needs it
 * skips itself (`requireBroker`).
 */
import { brokersStatus, brokersUp, harnessSettings, printLog, statusLine } from './index.js';

/** Both projects name this file, and vitest loads it once per project: bring the brokers up once per run. */
const ONCE = Symbol.for('event-gateway.brokers-global-setup');

export default function setup(): Promise<void> {
  const run = globalThis as { [ONCE]?: Promise<void> };
  run[ONCE] ??= bringUp();
  return run[ONCE];
}

async function bringUp(): Promise<void> {
  const settings = harnessSettings();
  const upFailure = await brokersUp(settings, printLog).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  const down = (await brokersStatus(settings)).filter((row) => row.problem !== undefined);
  if (!upFailure && down.length === 0) return;
  const report = [upFailure, ...down.map(statusLine)].filter(Boolean).join('\n');
  if (process.env['CI']) {
    throw new Error(`brokers not ready, and CI is set, so the run fails:\n${report}`);
  }
  process.stderr.write(`\n*** brokers not ready; the test files that need them will be skipped:\n${report}\n\n`);
}

import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/util/backoff.js';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { type GatewayProcess, GatewayScope } from '../helpers/gateway-process.js';
import { eventInput, type EventInput, publishBody, publishEvents, PublishStream, readStore, type Refusal, refusalOf } from '../helpers/publish-stream.js';
import type { WebhookRecorder } from '../helpers/webhook-recorder.js';
import { gatewayTargets } from '../targets/gateway-targets.js';
import type { BrokerTarget } from '../targets/target.js';

const run = promisify(execFile);
const targets = await gatewayTargets();

/**
 * A disk that really fills up needs a small filesystem of its own: a tmpfs, which only root may
 * mount. Where that is not allowed the disk-full case is skipped with a note; the write-error case
 * (RLIMIT_FSIZE, allowed for one's own processes) still makes the disk refuse writes.
 */
async function mountTmpfs(dir: string): Promise<boolean> {
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', dir]);
    return true;
  } catch (error) {
    const reason = `cannot mount a tmpfs here (${String(error).split('\n')[0]})`;
    // CI runs as root on this kind of machine: there the case must run, never vanish.
    if (process.env['CI']) throw new Error(`the disk-full case ${reason}; CI is set, so this fails the run`);
    process.stderr.write(`\n*** SKIPPING the disk-full case: ${reason}\n`);
    return false;
  }
}

/** Undoes a fault. */
type Heal = () => Promise<void>;

/** Holds SQLite's write lock from a connection of this process until healed. */
function holdWriteLock(databasePath: string): Heal {
  const lock = new Database(databasePath);
  lock.pragma('busy_timeout = 10000');
  lock.exec('BEGIN IMMEDIATE');
  return async () => {
    lock.exec('ROLLBACK');
    lock.close();
  };
}

/**
 * Fills the filesystem the database lives on. The WAL is first checkpointed and truncated, so the
 * next commit must grow it and meets ENOSPC (SQLITE_FULL) instead of reusing room it had.
 */
async function fillDisk(databasePath: string, dir: string): Promise<Heal> {
  const db = new Database(databasePath);
  try {
    await waitFor(() => (db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0]!.busy === 0, 10_000, 'a truncated WAL');
  } finally {
    db.close();
  }
  const filler = join(dir, 'filler');
  const heal = async () => rmSync(filler, { force: true });
  // The gateway keeps writing meanwhile: write until the disk says it is full, whatever statfs said.
  const fd = openSync(filler, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 1024; i++) writeSync(fd, chunk);
    throw new Error(`${dir} took 1 GiB without filling up`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') {
      await heal();
      throw error;
    }
  } finally {
    closeSync(fd);
  }
  return heal;
}

/** Makes the kernel refuse the gateway's file writes (EFBIG → SQLITE_IOERR_WRITE) until healed. */
async function refuseWrites(pid: number): Promise<Heal> {
  await run('prlimit', ['--pid', String(pid), '--fsize=1:unlimited']);
  return async () => void (await run('prlimit', ['--pid', String(pid), '--fsize=unlimited:unlimited']));
}

interface StoreFault {
  readonly name: string;
  readonly fault: () => Promise<Heal>;
  /** What the error message says. */
  readonly reason: RegExp;
}

/**
 * A client that keeps its connections open between requests, as most HTTP clients do. A server
 * that stalls must still answer what arrives on them, not reset them.
 */
class KeptAliveClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 2 });

  constructor(private readonly url: string) {}

  /** Opens both connections and leaves them idle. */
  async warmUp(): Promise<void> {
    const query = JSON.stringify({ query: '{ brokers { kind } }' });
    await Promise.all([this.post(query), this.post(query)]);
  }

  async publish(inputs: readonly EventInput[]): Promise<Refusal | null> {
    const { status, body } = await this.post(publishBody(inputs));
    return refusalOf(body as Parameters<typeof refusalOf>[0], status);
  }

  private post(body: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = request(this.url, { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json' }, timeout: 30_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
      });
      req.on('error', (error) => reject(new Error(`no answer on a kept-alive connection: ${error.message}`)));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * One fault against a running gateway. Met by a stream of mutations, and by two clients on
 * kept-alive connections: one mutation, then, while the gateway is still on it, a `publishEvents`
 * batch of large events (large, so that it needs room a full disk does not have). Healed; then
 * every answer is checked against the store.
 */
async function meetFault(
  target: BrokerTarget,
  gateway: GatewayProcess,
  databasePath: string,
  { topic, recorder }: { topic: string; recorder: WebhookRecorder },
  { name, fault, reason }: StoreFault,
): Promise<void> {
  const stream = new PublishStream({ target: () => gateway.url, topic, count: 400, perSecond: 5 });
  const client = new KeptAliveClient(gateway.url);
  const single = [eventInput(topic, 999)];
  const batch = Array.from({ length: 3 }, (_, i) => eventInput(topic, 1000 + i, { data: { seq: i, pad: 'x'.repeat(60_000) } }));
  let refusals: (Refusal | null)[];
  try {
    await client.warmUp();
    await stream.waitForCommitted(3, 30_000);
    const heal = await fault();
    try {
      const first = client.publish(single);
      // The batch goes out while the gateway may still wait for the store on the first one.
      await sleep(100);
      refusals = await Promise.all([first, client.publish(batch)]);
      await waitFor(() => stream.refused.length > 0, 30_000, 'a refused mutation of the stream');
    } finally {
      await heal();
    }
    await stream.waitForCommitted(stream.committed.length + 3, 30_000);
  } finally {
    client.close();
    await stream.stop();
  }

  const refusedIds = [...single, ...batch].map((e) => e.id).concat(stream.refused.map((r) => r.id));
  const written = readStore(databasePath, (db) =>
    db.prepare(`select count(*) from outbox where event_id in (select value from json_each(?))`).pluck().get(JSON.stringify(refusedIds)),
  );
  // The client retries: now the same mutations are committed, the batch all of it.
  const retried = [await publishEvents(gateway.url, single), await publishEvents(gateway.url, batch)];
  const committed = [...stream.committed, ...[...single, ...batch].map((e) => e.id)];
  await recorder.waitForAll(committed, 90_000);
  const counts = tally(committed, recorder);
  const refused = [...refusals, ...stream.refused];
  reportFault(
    name,
    target.broker,
    counts,
    `refused ${refused.length} (${String(refused[0]?.code)}: ${refused[0]?.message}), rows written by refused mutations ${written}`,
  );

  for (const r of refused) expect(r).toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(reason) });
  expect(stream.unanswered).toEqual([]);
  expect(written).toBe(0);
  expect(retried).toEqual([null, null]);
  expect(counts.lostIds).toEqual([]);
}

/**
 * Scenario 5: the store is busy (another process holds SQLite's write lock past the gateway's
 * busy timeout), the disk is full (a tmpfs filled up: ENOSPC), or the disk refuses a write
 * (RLIMIT_FSIZE set on the gateway process: EFBIG). Every mutation answers either data (and its
 * event is delivered) or `STORE_UNAVAILABLE` with a message saying why; a refused mutation wrote
 * nothing — not one row of the batch; once the fault is gone the same mutations succeed.
 * The faults are the store's, so each broker's gateway meets them beside the others.
 */
describe.concurrent('fault: store busy or disk write failing', () => {
  for (const target of targets) {
    it(`[${target.broker}] a mutation the store cannot take answers STORE_UNAVAILABLE and writes nothing`, async () => {
      const scope = new GatewayScope();
      const disk = mkdtempSync(join(tmpdir(), 'gw-disk-'));
      const tmpfs = await mountTmpfs(disk);
      try {
        const databasePath = join(disk, 'gateway.db');
        const faults: StoreFault[] = [
          { name: 'store-busy', fault: async () => holdWriteLock(databasePath), reason: /the store is busy \(SQLITE_BUSY/ },
          ...(tmpfs ? [{ name: 'disk-full', fault: () => fillDisk(databasePath, disk), reason: /the store cannot be written \(SQLITE_FULL\)/ }] : []),
          { name: 'disk-write-error', fault: () => refuseWrites(gateway.pid), reason: /the store cannot be written \(SQLITE_IOERR/ },
        ];
        // One topic, consumer and webhook per fault, so each fault's tally is its own.
        const streams = await Promise.all(faults.map(async (f) => ({ topic: target.newTopic(f.name), recorder: await scope.recorder() })));
        const consumers = streams.map(({ topic, recorder }) => ({ name: target.newConsumer('store'), topic, webhook: { url: recorder.url } }));
        const gateway = await scope.start({ broker: target.broker, databasePath, consumers, env: target.env });
        for (const [i, f] of faults.entries()) await meetFault(target, gateway, databasePath, streams[i]!, f);
        expect((await gateway.terminate(20_000)).code).toBe(0);
      } finally {
        // The gateway is gone before its disk is unmounted.
        await scope.dispose();
        if (tmpfs) await run('umount', [disk]);
        rmSync(disk, { recursive: true, force: true });
      }
    }, 180_000);
  }
});

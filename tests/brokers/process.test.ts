import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reachable } from '../helpers/brokers.js';
import { gql } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { subscribe, wsClient } from '../helpers/subscriptions.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** Each broker as `BROKER=` selects it, with the port the suite checks before running. */
const BROKERS = [
  { broker: 'rabbitmq', port: 5672 },
  { broker: 'kafka', port: 9092 },
  { broker: 'nats', port: 4222 },
] as const;

const reachability = await Promise.all(BROKERS.map(({ port }) => reachable('127.0.0.1', port)));

/**
 * The real gateway process, configured only through its environment: `BROKER` selects the
 * adapter, and a mutation's event comes back through a graphql-ws subscription.
 */
describe('gateway process on each broker', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGTERM');
  });

  BROKERS.forEach(({ broker, port }, i) => {
    it.skipIf(!reachability[i] && !process.env['CI'])(
      `BROKER=${broker}: mutation → broker → WebSocket subscription`,
      async () => {
        if (!reachability[i]) throw new Error(`${broker} is not reachable on 127.0.0.1:${port}`);
        const dir = mkdtempSync(join(tmpdir(), 'gw-'));
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
          cwd: ROOT,
          env: { ...process.env, BROKER: broker, PORT: '0', LOG_LEVEL: 'info', DATABASE_PATH: join(dir, 'g.db'), DATABASE_SYNCHRONOUS: 'NORMAL' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        let stdout = '';
        child.stdout!.on('data', (c) => (stdout += c));
        const line = await waitFor(() => stdout.split('\n').find((l) => l.includes('event-gateway listening')), 30_000, 'listening');
        const { url, broker: kind } = JSON.parse(line) as { url: string; broker: string };
        expect(kind).toBe(broker);

        const topic = uniqueName('proc');
        const client = wsClient(url);
        const live = subscribe<{ events: { id: string; data: unknown } }>(client, `subscription($t: String!) { events(topic: $t) { id data } }`, { t: topic });
        // The subscription is live once the broker side exists; publish until the first arrives.
        const published = new Set<string>();
        await waitFor(
          async () => {
            const r = await gql<{ publishEvent: { event: { id: string } } }>(
              url,
              `mutation($t: String!) { publishEvent(input: { topic: $t, type: "proc.check", data: { ok: true } }) { event { id } } }`,
              { t: topic },
            );
            published.add(r.data!.publishEvent.event.id);
            return live.received.length > 0;
          },
          30_000,
          'an event through the broker',
        );
        expect(published.has(live.received[0]!.events.id)).toBe(true);
        const brokers = await gql<{ brokers: { kind: string; connected: boolean }[] }>(url, `{ brokers { kind connected } }`);
        expect(brokers.data!.brokers).toEqual([{ kind: broker, connected: true }]);
        live.close();
        await client.dispose();
        child.kill('SIGTERM');
        expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
      },
      90_000,
    );
  });
});

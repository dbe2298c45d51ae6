import { inspect } from 'node:util';
import { pino } from 'pino';
import { expect } from 'vitest';
import { buildApp } from '../../../src/app.js';
import type { Broker } from '../../../src/brokers/broker.js';
import { loadConfig } from '../../../src/config/config.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import type { Logger } from '../../../src/util/logger.js';
import { consumeWith } from '../consume.js';
import { makeEvent, uniqueName, waitFor } from '../events.js';
import { removeDatabase, tempDatabasePath } from '../store.js';

/** A logger at `trace` (everything, kafkajs's own chatter included) whose output the test reads. */
export function captureLogs(): { logger: Logger; text(): string } {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return { logger, text: () => lines.join('') };
}

/** Everything an error shows anywhere: message, stack, causes, own fields, as JSON and inspected. */
export function everythingIn(error: unknown): string {
  const parts = [inspect(error, { depth: 10, showHidden: false })];
  for (let current = error as { message?: unknown; stack?: unknown; cause?: unknown } | undefined, i = 0; current && i < 10; i++) {
    parts.push(String(current.message), String(current.stack));
    try {
      parts.push(JSON.stringify(current));
    } catch {
      // Circular: inspect above has it.
    }
    current = current.cause as typeof current;
  }
  return parts.join('\n');
}

/** Asserts that no secret appears in `text`; names the secret's index, never prints the secret. */
export function expectNoSecrets(text: string, secrets: readonly string[], where: string): void {
  secrets.forEach((secret, i) => {
    expect(secret.length, `secret #${i} is long enough to search for`).toBeGreaterThan(5);
    expect(text.includes(secret), `secret #${i} appears in ${where}`).toBe(false);
  });
}

/**
 * Starts a real gateway (`buildApp(loadConfig(env))`, SQLite in a temporary file) that is expected
 * to refuse to start, and returns what `start()` rejected with and how long it took. The app is
 * stopped and its database removed either way.
 */
export async function startGatewayExpectingFailure(env: Record<string, string>, logger: Logger): Promise<{ error: unknown; elapsedMs: number }> {
  const databasePath = tempDatabasePath();
  const config = loadConfig({ PORT: '0', DATABASE_PATH: databasePath, DATABASE_SYNCHRONOUS: 'NORMAL', ...env });
  const app = buildApp(config, { logger });
  const startedAt = Date.now();
  try {
    const error = await app.start().then(
      () => new Error('the gateway started'),
      (cause: unknown) => cause,
    );
    return { error, elapsedMs: Date.now() - startedAt };
  } finally {
    await app.stop();
    removeDatabase(databasePath);
  }
}

/**
 * Connects `broker`, subscribes to a new topic (and attaches a durable consumer to it unless
 * `consume` is false), publishes two events and waits until each arrived everywhere. Closes the
 * broker at the end.
 */
export async function publishAndReceive(broker: Broker, { consume = true, timeoutMs = 30_000 } = {}): Promise<void> {
  try {
    await broker.connect();
    const topic = uniqueName('secure');
    const live: GatewayEvent[] = [];
    const handled: GatewayEvent[] = [];
    await broker.subscribe(topic, (event) => live.push(event));
    if (consume) {
      await consumeWith(broker, { name: uniqueName('secure'), topic, prefetch: 5 }, async (delivery) => {
        handled.push(delivery.event);
        return { kind: 'ack' };
      });
    }
    const events = [makeEvent({ topic }), makeEvent({ topic })];
    await broker.publish(events);
    const ids = events.map((e) => e.id);
    await waitFor(
      () => live.length === 2 && (!consume || ids.every((id) => handled.some((e) => e.id === id))),
      timeoutMs,
      'the events, subscribed and consumed',
    );
    expect(live.map((e) => e.id)).toEqual(ids);
  } finally {
    await broker.close();
  }
}

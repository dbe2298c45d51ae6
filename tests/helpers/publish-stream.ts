import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { gql } from './app.js';
import { waitFor } from './events.js';

export interface PublishStreamOptions {
  /** Where to send the next mutation; undefined while no gateway runs (the call is skipped). */
  target: () => string | undefined;
  topic: string;
  /** Most mutations sent. */
  count: number;
  perSecond: number;
}

export interface Refusal {
  readonly code: unknown;
  readonly message: string;
}

export type EventInput = { id: string; topic: string; type: string; key?: string | null; data: unknown };

/** An event input with a client-chosen id, so that even a mutation that got no answer is known. */
export const eventInput = (topic: string, seq: number, extra: Partial<EventInput> = {}): EventInput => ({
  id: randomUUID(),
  topic,
  type: 'fault.tick',
  data: { seq },
  ...extra,
});

/**
 * A steady, bounded stream of `publishEvent` mutations. An id counts as committed only when its
 * mutation answered with data.
 */
export class PublishStream {
  readonly committed: string[] = [];
  readonly refused: (Refusal & { id: string })[] = [];
  /** Ids whose mutation got no answer at all (connection refused or cut): not committed. */
  readonly unanswered: string[] = [];
  readonly done: Promise<void>;
  private stopped = false;

  constructor(private readonly options: PublishStreamOptions) {
    this.done = this.run();
  }

  /** Every id a mutation was sent for, answered or not. */
  get attempted(): string[] {
    return [...this.committed, ...this.refused.map((r) => r.id), ...this.unanswered];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  async waitForCommitted(n: number, timeoutMs: number): Promise<void> {
    await waitFor(() => this.committed.length >= n, timeoutMs, `${n} committed mutations`).catch((error: unknown) => {
      throw new Error(`${(error as Error).message} (${this.committed.length} committed, ${this.refused.length} refused, ${this.unanswered.length} unanswered)`);
    });
  }

  private async run(): Promise<void> {
    const { count, perSecond, topic } = this.options;
    const interval = 1000 / perSecond;
    const begin = Date.now();
    for (let i = 0; i < count && !this.stopped; i++) {
      const due = begin + i * interval;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const url = this.options.target();
      if (!url) continue;
      const input = eventInput(topic, i);
      try {
        const refusal = await publishEvents(url, [input]);
        if (refusal) this.refused.push({ ...refusal, id: input.id });
        else this.committed.push(input.id);
      } catch {
        this.unanswered.push(input.id);
      }
    }
  }
}

/** The GraphQL request body publishing `inputs`: `publishEvent` for one, `publishEvents` for several. */
export function publishBody(inputs: readonly EventInput[]): string {
  const single = inputs.length === 1;
  const query = single
    ? `mutation($i: PublishEventInput!) { publishEvent(input: $i) { outboxId } }`
    : `mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { outboxId } }`;
  return JSON.stringify({ query, variables: { i: single ? inputs[0] : inputs } });
}

type GraphQLBody = { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: unknown } }[] };

/** Null when the answer to `publishBody` carries data, else what the API said. */
export function refusalOf(body: GraphQLBody, status: number): Refusal | null {
  const error = body.errors?.[0];
  const payload = body.data?.['publishEvent'] ?? body.data?.['publishEvents'];
  return error || !payload ? { code: error?.extensions?.code, message: error?.message ?? `HTTP ${status}` } : null;
}

/** Publishes; resolves null once committed, or with the error the API answered. No answer rejects. */
export async function publishEvents(url: string, inputs: readonly EventInput[]): Promise<Refusal | null> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: publishBody(inputs),
    signal: AbortSignal.timeout(30_000),
  });
  return refusalOf((await response.json()) as GraphQLBody, response.status);
}

// ---------------------------------------------------------------- observing the gateway

export interface BrokerState {
  kind: string;
  connected: boolean;
  circuit: 'CLOSED' | 'OPEN' | 'HALF_OPEN';
  pendingEvents: number;
  lastError: string | null;
}

export async function brokerState(url: string): Promise<BrokerState> {
  const result = await gql<{ brokers: BrokerState[] }>(url, `{ brokers { kind connected circuit pendingEvents lastError } }`);
  if (!result.data) throw new Error(`brokers query failed: ${JSON.stringify(result.errors)}`);
  return result.data.brokers[0]!;
}

/** Dead letters of `consumer` still DEAD, as the `consumers` query reports them (from SQLite). */
export async function deadLetterCount(url: string, consumer: string): Promise<number> {
  const result = await gql<{ consumers: { name: string; deadLettered: number }[] }>(url, `{ consumers { name deadLettered } }`);
  const status = result.data?.consumers.find((c) => c.name === consumer);
  if (!status) throw new Error(`consumers query has no ${consumer}: ${JSON.stringify(result.errors ?? result.data)}`);
  return status.deadLettered;
}

/** Reads the gateway's SQLite file from a connection of this process (read-only). */
export function readStore<T>(databasePath: string, read: (db: Database.Database) => T): T {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

import { connect, type Channel, type ChannelModel } from 'amqplib';
import { harnessSettings, rabbitmqctl } from '../../scripts/brokers/index.js';
import { RabbitMqBroker, type RabbitMqBrokerOptions } from '../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { sleep } from '../../src/util/backoff.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { waitFor } from './events.js';

/** The machine's RabbitMQ (scripts/brokers/): amqp://guest:guest@127.0.0.1:5672 unless `RABBITMQ_URL` says otherwise. */
export const RABBITMQ_URL = harnessSettings().rabbitmqUrl;

export { rabbitmqctl };

/** A broker as a gateway process would open it, on the default exchange unless told otherwise. */
export function createRabbitMqBroker(options: Partial<RabbitMqBrokerOptions> = {}, logger: Logger = silentLogger): RabbitMqBroker {
  return new RabbitMqBroker({ url: RABBITMQ_URL, exchange: 'events', topics: {}, ...options }, logger);
}

/** Stops the RabbitMQ application for `downMs`, and always starts it again, even when stopping failed. */
export async function restartRabbitMq(downMs: number): Promise<void> {
  try {
    await rabbitmqctl('stop_app');
    await sleep(downMs);
  } finally {
    await rabbitmqctl('start_app');
    await rabbitmqctl('await_startup');
  }
}

export interface QueueInfo {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  messages: number;
  /** Counted for stream queues too, unlike AMQP's `checkQueue`, which says 0 for them. */
  consumers: number;
  arguments: Record<string, unknown>;
}

export interface BindingInfo {
  source_name: string;
  destination_name: string;
  routing_key: string;
}

export interface ExchangeInfo {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
}

async function list<T>(what: string, ...columns: string[]): Promise<T[]> {
  return JSON.parse(await rabbitmqctl(`list_${what}`, ...columns, '--formatter', 'json', '-q')) as T[];
}

/** Queues as the broker reports them; `arguments` as a plain object. */
export async function listQueues(): Promise<QueueInfo[]> {
  const rows = await list<Omit<QueueInfo, 'arguments'> & { arguments: [string, string, unknown][] }>(
    'queues',
    'name',
    'durable',
    'auto_delete',
    'exclusive',
    'messages',
    'consumers',
    'arguments',
  );
  return rows.map((row) => ({ ...row, arguments: Object.fromEntries(row.arguments.map(([name, , value]) => [name, value])) }));
}

export const listBindings = () => list<BindingInfo>('bindings', 'source_name', 'destination_name', 'routing_key');
export const listExchanges = () => list<ExchangeInfo>('exchanges', 'name', 'type', 'durable', 'auto_delete');

/** The stream queue the gateway's subscriptions of `topic` read. */
export const streamQueue = (topic: string, exchange = 'events') => `${exchange}.stream.${topic}`;

/**
 * Waits until the stream of `topic` has a consumer, so an event published from now on reaches the
 * gateway's subscription (a GraphQL subscribe returns before the broker side is in place).
 * Returns the stream's name.
 */
export async function waitForStreamConsumer(topic: string, exchange = 'events'): Promise<string> {
  const queue = streamQueue(topic, exchange);
  await waitFor(async () => ((await listQueues()).find((q) => q.name === queue)?.consumers ?? 0) > 0, 10_000, `a consumer of ${queue}`);
  return queue;
}

/** A plain amqplib client, as another application would connect. */
export async function plainClient(): Promise<{ connection: ChannelModel; channel: Channel; close(): Promise<void> }> {
  const connection = await connect(RABBITMQ_URL);
  const channel = await connection.createChannel();
  // A refused operation rejects its own call; without a listener the channel's 'error' would crash the run.
  channel.on('error', () => undefined);
  return {
    connection,
    channel,
    close: () => connection.close().catch(() => undefined),
  };
}

/** A queue's ready messages and consumers, or null when it does not exist. Asks on a channel of its own. */
export async function queueState(connection: ChannelModel, queue: string): Promise<{ messageCount: number; consumerCount: number } | null> {
  const channel = await connection.createChannel();
  // A missing queue closes the channel with an 'error' event; the rejected check below reports it.
  channel.on('error', () => undefined);
  try {
    const { messageCount, consumerCount } = await channel.checkQueue(queue);
    await channel.close();
    return { messageCount, consumerCount };
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return null;
    throw error;
  }
}

/** Closes a connection from the broker's side, found by its name, as an operator would. */
export async function closeConnectionNamed(connectionName: string): Promise<void> {
  const rows = (await rabbitmqctl('list_connections', 'pid', 'client_properties', '-q', '--no-table-headers')).split('\n');
  const pid = rows.find((row) => row.includes(`"${connectionName}"`))?.split('\t')[0];
  if (!pid) throw new Error(`no RabbitMQ connection named ${connectionName}`);
  await rabbitmqctl('close_connection', pid, 'closed by a test');
}

/**
 * Deletes queues and exchanges tests created: consumers' queues with their `.retry.*` and `.dlq`
 * queues, and the stream queues subscriptions made (`streamQueue`), which outlive them.
 */
export async function deleteRabbitMqObjects(objects: {
  consumers?: Iterable<string>;
  exchanges?: Iterable<string>;
  streams?: Iterable<string>;
}): Promise<void> {
  const consumers = [...(objects.consumers ?? [])];
  const exchanges = [...(objects.exchanges ?? [])];
  const streams = [...(objects.streams ?? [])];
  if (consumers.length === 0 && exchanges.length === 0 && streams.length === 0) return;
  const queues = consumers.length > 0 ? (await listQueues()).map((q) => q.name) : [];
  const doomed = [...queues.filter((queue) => consumers.some((name) => queue === name || queue.startsWith(`${name}.`))), ...streams];
  const client = await plainClient();
  try {
    for (const queue of doomed) await client.channel.deleteQueue(queue);
    for (const exchange of exchanges) await client.channel.deleteExchange(exchange);
  } finally {
    await client.close();
  }
}

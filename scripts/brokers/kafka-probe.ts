/**
 * Whether a Kafka broker can do real work, asked with kafkajs, the client the gateway uses.
 */
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

/** A fixed name: the warm-up leaves one transactional id and no group behind, however often it runs. */
const WARMUP = 'event-gateway-harness-warmup';

/**
 * Resolves with undefined when the broker at host:port is ready for clients, else with the first
 * step that is not. Ready means more than an open port: it answers requests (Kafka opens its
 * client listener for requests only after the broker caught up with the metadata log and was
 * unfenced), serves metadata, and has its group and transaction coordinators and producer-id
 * allocation ready (a fresh store creates `__consumer_offsets` / `__transaction_state` here; after
 * a restart their partitions are loaded again). Otherwise the first consumer group or idempotent
 * producer of a test meets retriable errors: kafkajs retries, but logs them at ERROR and loses
 * seconds. No retries of its own: the caller polls.
 */
export async function kafkaNotReady(host: string, port: number): Promise<string | undefined> {
  const kafka = new Kafka({
    clientId: 'event-gateway-harness',
    brokers: [`${host}:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
  } catch {
    return 'no answer to ApiVersions';
  }
  try {
    const { brokers } = await admin.describeCluster().catch(() => ({ brokers: [] }));
    if (brokers.length === 0) return 'no metadata';
    if (!(await succeeds(admin.describeGroups([WARMUP])))) return 'group coordinator not available';
  } finally {
    await admin.disconnect();
  }
  // A transactional producer id needs both the transaction coordinator and a block of producer
  // ids, which a freshly started broker first fetches from the controller.
  // kafkajs refuses an idempotent producer without retries; one quick retry keeps a probe short.
  const producer = kafka.producer({
    transactionalId: WARMUP,
    maxInFlightRequests: 1,
    idempotent: true,
    retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 },
  });
  try {
    await producer.connect();
    const transaction = await producer.transaction();
    await transaction.abort();
    return undefined;
  } catch {
    return 'transaction coordinator or producer id not available';
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/** True when the broker at host:port answers Kafka requests at all (`status`). */
export async function kafkaAnswers(host: string, port: number): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'event-gateway-harness',
    brokers: [`${host}:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

const succeeds = (promise: Promise<unknown>) =>
  promise.then(
    () => true,
    () => false,
  );

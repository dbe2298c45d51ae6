import kafkajs, { type CompressionTypes as CompressionType, type Kafka, type LogEntry, type logCreator, type SASLOptions } from 'kafkajs';
import SnappyCodec from 'kafkajs-snappy';
import type { Logger } from '../../util/logger.js';
import { tlsConnectionOptions } from '../tls.js';
import type { ResolvedKafkaOptions } from './options.js';

const { Kafka: KafkaClient, CompressionCodecs, CompressionTypes, logLevel: KafkaLogLevel } = kafkajs;

// kafkajs keeps codecs in a process-wide registry; consumers need it too, to read snappy batches
// written by any producer.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;

export function compressionType(compression: ResolvedKafkaOptions['compression']): CompressionType {
  switch (compression) {
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy':
      return CompressionTypes.Snappy;
    case 'none':
      return CompressionTypes.None;
  }
}

/**
 * Retries of one kafkajs operation: from 300 ms, doubling, at most 5 s apart, `requestRetries`
 * times. Finite on purpose, for the producer too: see `KafkaPublisher`.
 */
export function requestRetry(options: ResolvedKafkaOptions) {
  return { retries: options.requestRetries, initialRetryTime: 300, maxRetryTime: 5000 };
}

/** The connection settings every producer, consumer and admin of one broker instance shares. */
export function createKafkaClient(options: ResolvedKafkaOptions, logger: Logger): Kafka {
  return new KafkaClient({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: 3000,
    requestTimeout: 30_000,
    retry: requestRetry(options),
    ...(options.ssl ? { ssl: tlsConnectionOptions(options.ssl) } : {}),
    ...(options.sasl ? { sasl: saslOptions(options.sasl) } : {}),
    logLevel: kafkaLogLevelFor(logger),
    logCreator: pinoLogCreator(logger),
  });
}

/** The one place the SASL password is handed over: to kafkajs, which keeps it out of its logs. */
function saslOptions({ mechanism, username, password }: NonNullable<ResolvedKafkaOptions['sasl']>): SASLOptions {
  return { mechanism, username, password: password.reveal() };
}

/**
 * kafkajs filters by its own level before formatting, so ask it only for what pino would print
 * after the mapping in `pinoLogCreator`.
 */
function kafkaLogLevelFor(logger: Logger): number {
  if (logger.isLevelEnabled('trace')) return KafkaLogLevel.DEBUG;
  if (logger.isLevelEnabled('debug')) return KafkaLogLevel.INFO;
  if (logger.isLevelEnabled('warn')) return KafkaLogLevel.WARN;
  return KafkaLogLevel.NOTHING;
}

/**
 * Messages the adapter handles and logs itself: it sets a finite retry count and replaces the
 * producer after a failed send (see `KafkaPublisher`), which is what the first warning is about;
 * and `GroupMember` logs every consumer crash and restart, at a level that depends on the cause.
 */
const HANDLED_MESSAGES = [/^Limiting retries for the idempotent producer/, /^Crash: /, /^Restarting the consumer in /];

/**
 * Socket-level chatter: every refused connection and every retried error response. During an
 * outage these repeat many times a second; `ConnectionMonitor` reports the outage once instead.
 */
const SOCKET_NAMESPACES = new Set(['Connection', 'BrokerPool']);

/**
 * kafkajs logs into pino: ERROR and WARN as warn (kafkajs logs ERROR for attempts it then
 * retries itself), routine ones as debug, INFO (group lifecycle) as debug, DEBUG as trace. What
 * the gateway must act on, the adapter logs itself with the ids that find the message again.
 */
function pinoLogCreator(logger: Logger): logCreator {
  const base = logger.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...extra } = log;
      const fields = { kafkajs: namespace, ...extra };
      const routine = SOCKET_NAMESPACES.has(namespace) || HANDLED_MESSAGES.some((pattern) => pattern.test(message));
      if (level === KafkaLogLevel.ERROR || level === KafkaLogLevel.WARN) {
        if (routine) base.debug(fields, message);
        else base.warn(fields, message);
      } else if (level === KafkaLogLevel.INFO) base.debug(fields, message);
      else base.trace(fields, message);
    };
}

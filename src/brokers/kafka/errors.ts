import { BrokerAuthenticationError, ConfigError, errorMessage, GatewayError } from '../../errors.js';
import { certificateFailure, certificateRefusal } from '../tls.js';
import type { ResolvedKafkaOptions } from './options.js';

/**
 * Kafka refused a message for a reason another attempt cannot fix (too large, invalid record or
 * topic). The relay marks such events FAILED instead of retrying them.
 */
export class KafkaMessageRejectedError extends GatewayError {
  override readonly code = 'BROKER_REJECTED';
  override readonly expose = true;
}

/** Kafka error codes (kafkajs `type`) for a message that no retry will get accepted. */
const REJECTED_MESSAGE_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);

/** Errors at connect time that reconnecting cannot fix: credentials, TLS, protocol mismatch. */
const PERMANENT_CONNECT_ERRORS = new Set(['KafkaJSSASLAuthenticationError', 'KafkaJSNotImplemented', 'KafkaJSUnsupportedMagicByteInMessageSet']);

/** kafkajs errors that mean Kafka did not answer at all (as opposed to answering with an error). */
const UNREACHABLE_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
]);

interface KafkaJsErrorLike {
  name?: string;
  type?: string;
  retriable?: boolean;
  cause?: unknown;
}

/** kafkajs wraps the error that ended its retries (`KafkaJSNumberOfRetriesExceeded`); unwrap it. */
function rootCause(error: unknown): KafkaJsErrorLike {
  let current = error as KafkaJsErrorLike | undefined;
  for (let depth = 0; depth < 10 && current?.cause && typeof current.cause === 'object'; depth++) {
    current = current.cause as KafkaJsErrorLike;
  }
  return current ?? {};
}

/** True when Kafka rejected the message itself, so sending it again is pointless. */
export function isRejectedMessage(error: unknown): boolean {
  const type = rootCause(error).type ?? (error as KafkaJsErrorLike).type;
  return type !== undefined && REJECTED_MESSAGE_TYPES.has(type);
}

/**
 * True for connect failures that no later attempt can fix: refused credentials, a TLS certificate
 * one side does not trust, a protocol mismatch.
 */
export function isPermanentConnectError(error: unknown): boolean {
  const names = [(error as KafkaJsErrorLike).name, rootCause(error).name];
  return names.some((name) => name !== undefined && PERMANENT_CONNECT_ERRORS.has(name)) || certificateFailure(error) !== undefined;
}

/**
 * What `connect()` rejects with after a permanent connect failure: refused credentials or
 * certificates as `BrokerAuthenticationError` naming the variable to fix, anything else as
 * `ConfigError`. kafkajs's SASL errors carry the server's reason, never the password.
 */
export function connectRefusal(error: unknown, options: ResolvedKafkaOptions): ConfigError {
  const where = options.brokers.join(',');
  const names = [(error as KafkaJsErrorLike).name, rootCause(error).name];
  if (names.includes('KafkaJSSASLAuthenticationError')) {
    const { sasl } = options;
    const who = sasl ? `user "${sasl.username}" (SASL ${sasl.mechanism.toUpperCase()})` : 'the connection';
    return new BrokerAuthenticationError(
      `${sasl?.password.source ?? 'KAFKA_SASL_MECHANISM'}: Kafka at ${where} refused ${who}: authentication failed: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  return (
    certificateRefusal(error, 'KAFKA_SSL_', 'Kafka', where) ??
    new ConfigError(`Kafka at ${where} refused the connection for good: ${errorMessage(error)}`, { cause: error })
  );
}

/**
 * True when `error` (or what it wraps) says Kafka could not be reached. Other failures (a
 * coordinator moving, a leader election after a restart) come from a Kafka that answers.
 */
export function isUnreachable(error: unknown): boolean {
  let current = error as KafkaJsErrorLike | undefined;
  for (let depth = 0; depth < 10 && current && typeof current === 'object'; depth++) {
    if (current.name !== undefined && UNREACHABLE_ERRORS.has(current.name)) return true;
    current = current.cause as KafkaJsErrorLike | undefined;
  }
  return false;
}

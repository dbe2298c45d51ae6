import type { Secret } from '../../config/secret.js';
import { BrokerAuthenticationError, BrokerUnavailableError, ConfigError, errorMessage, GatewayError } from '../../errors.js';
import { redactUrl } from '../redact-url.js';
import { certificateRefusal } from '../tls.js';

/** AMQP reply codes the adapter tells apart (amqplib puts them on `error.code`). */
const ACCESS_REFUSED = 403;
const PRECONDITION_FAILED = 406;
const NOT_ALLOWED = 530;

/** The AMQP reply code of an amqplib error, when the broker sent one. */
export function replyCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Whether another attempt cannot fix `error`: the configuration disagrees with the broker (a queue
 * or exchange declared with other arguments, a refused login or virtual host, missing permissions).
 * Anything else — a broker that is down, restarting or closed a channel — is worth retrying.
 */
export function isPermanent(error: unknown): boolean {
  if (error instanceof GatewayError) return !error.retryable;
  const code = replyCode(error);
  if (code === ACCESS_REFUSED || code === NOT_ALLOWED || code === PRECONDITION_FAILED) return true;
  // amqplib reports a refused handshake only in the message text, without a code.
  const message = errorMessage(error);
  return /ACCESS-REFUSED|\(NOT-ALLOWED\)|Expected ConnectionOpenOk; got <ConnectionClose/.test(message);
}

/**
 * The error `connect()` rejects with when the broker refuses this gateway for good: a refused
 * login or certificate is a `BrokerAuthenticationError` naming the variable to fix (`password`:
 * where the password came from when not from the URL).
 */
export function connectionRefused(error: unknown, url: string, password?: Secret): GatewayError {
  if (error instanceof GatewayError) return error;
  const where = redactUrl(url, 'RABBITMQ_URL');
  const certificate = certificateRefusal(error, 'RABBITMQ_', 'RabbitMQ', where);
  if (certificate) return certificate;
  const message = errorMessage(error);
  if (/ConnectionOpenOk/.test(message)) {
    return new ConfigError(`RabbitMQ at ${where} refused to open the virtual host (does it exist, may this user use it?)`, { cause: error });
  }
  // amqplib reports a refused login (403 in the handshake) only in its message text.
  if (/^Handshake terminated by server: 403/.test(message)) {
    const user = URL.canParse(url) ? decodeURIComponent(new URL(url).username) || 'guest' : 'guest';
    return new BrokerAuthenticationError(`${password?.source ?? 'RABBITMQ_URL'}: RabbitMQ at ${where} refused the login of user "${user}": ${message}`, {
      cause: error,
    });
  }
  return new ConfigError(`RabbitMQ at ${where} refused the connection: ${message}`, { cause: error });
}

/**
 * Turns a failed declaration into an error that names what to fix. A queue or exchange that
 * already exists with other arguments makes RabbitMQ answer PRECONDITION_FAILED (and close the
 * channel); declaring it again never helps, so this is a `ConfigError` naming the argument.
 */
export function declarationFailed(error: unknown, what: string): GatewayError {
  const code = replyCode(error);
  const serverText = errorMessage(error);
  if (code === PRECONDITION_FAILED) {
    const argument = /inequivalent arg '([^']+)'/.exec(serverText)?.[1] ?? 'arguments';
    return new ConfigError(
      `RabbitMQ ${what} already exists with a different ${argument} than the gateway declares ` +
        `(${serverText}); delete it, or set the configuration back to match`,
      { cause: error, details: { argument } },
    );
  }
  if (code === ACCESS_REFUSED) {
    return new ConfigError(`RabbitMQ refused access to ${what}: ${serverText}`, { cause: error });
  }
  return new BrokerUnavailableError(`could not declare RabbitMQ ${what}: ${serverText}`, { cause: error });
}

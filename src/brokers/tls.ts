import type { ConnectionOptions } from 'node:tls';
import type { TlsSettings } from '../config/broker-security.js';
import { BrokerAuthenticationError, errorMessage } from '../errors.js';

/**
 * Node `tls.connect` options for a broker client: the CA to trust and the client certificate.
 * Fields left out keep Node's defaults (the system's CAs, no client certificate); the server's
 * certificate is always verified.
 */
export function tlsConnectionOptions(tls: TlsSettings): ConnectionOptions {
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key.reveal() }),
    ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase.reveal() }),
  };
}

/** OpenSSL's verdicts on a server certificate this client does not trust (Node's `error.code`). */
const UNTRUSTED_SERVER = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** TLS alerts a server sends when it refuses the client's certificate, or the lack of one. */
const REFUSED_CLIENT = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);

/** The failed side of a TLS handshake that no retry will change, found by `code` in `error`'s causes. */
export function certificateFailure(error: unknown): { side: 'server' | 'client'; error: Error } | undefined {
  let current = error as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; depth < 10 && current && typeof current === 'object'; depth++) {
    if (typeof current.code === 'string') {
      if (UNTRUSTED_SERVER.has(current.code)) return { side: 'server', error: current as Error };
      if (REFUSED_CLIENT.has(current.code)) return { side: 'client', error: current as Error };
    }
    current = current.cause as typeof current;
  }
  return undefined;
}

/**
 * The error a first connection ends with when the TLS handshake failed on a certificate, naming
 * the variable to fix: `<prefix>CA_FILE` when this client does not trust the server,
 * `<prefix>CERT_FILE` when the server refused the client's certificate. Undefined for any other
 * failure. TLS errors carry no key material, so their text is kept.
 */
export function certificateRefusal(error: unknown, prefix: string, broker: string, where: string): BrokerAuthenticationError | undefined {
  const failure = certificateFailure(error);
  if (!failure) return undefined;
  // OpenSSL's messages carry its error stack ("8040…:error:0A000412:SSL routines:…"): its
  // `reason`, or else the code, says it without.
  const { reason: openssl, code } = failure.error as { reason?: unknown; code?: string };
  const message = errorMessage(failure.error);
  const reason = typeof openssl === 'string' ? `${openssl} (${code})` : message.includes('SSL routines') ? String(code) : `${message} (${code})`;
  return failure.side === 'server'
    ? new BrokerAuthenticationError(`${prefix}CA_FILE: the TLS certificate of ${broker} at ${where} is not trusted: ${reason}`, { cause: error })
    : new BrokerAuthenticationError(`${prefix}CERT_FILE: ${broker} at ${where} refused the client certificate: ${reason}`, { cause: error });
}

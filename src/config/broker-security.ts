import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fromSeed } from '@nats-io/nkeys';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { flag, settingsByName } from './env-settings.js';
import { Secret } from './secret.js';

/*
 * TLS and credentials of each broker, from the environment: one group of settings per broker,
 * keyed by variable, nested under that broker in `settingsSchema` (src/config/config.ts). Values
 * never appear in messages: a bad one is named by its variable only.
 * Files (`*_FILE`) are read once, when the configuration is loaded: a rotated certificate or
 * password takes effect at the next start.
 */

const path = z.string().min(1);

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

export const kafkaSecurityEnv = settingsByName({
  KAFKA_SSL: flag
    .optional()
    .describe("`true`: TLS, trusting the system's CAs unless `KAFKA_SSL_CA_FILE` is set; on by itself with `KAFKA_SSL_CA_FILE` or a client certificate"),
  KAFKA_SSL_CA_FILE: path.optional().describe("PEM CA certificate(s) the brokers' certificates must chain to"),
  KAFKA_SSL_CERT_FILE: path.optional().describe('client certificate (PEM chain), for listeners with `ssl.client.auth=required`; needs `KAFKA_SSL_KEY_FILE`'),
  KAFKA_SSL_KEY_FILE: path.optional().describe("the client certificate's private key (PEM)"),
  KAFKA_SSL_KEY_PASSPHRASE: z.string().optional().describe('passphrase of an encrypted private key'),
  KAFKA_SASL_MECHANISM: z.enum(KAFKA_SASL_MECHANISMS).optional().describe('`plain`, `scram-sha-256` or `scram-sha-512`'),
  KAFKA_SASL_USERNAME: z.string().optional().describe('the SASL user'),
  KAFKA_SASL_PASSWORD: z.string().optional().describe('its password'),
  KAFKA_SASL_PASSWORD_FILE: path.optional().describe('a file holding its password, instead of `KAFKA_SASL_PASSWORD`'),
});

export const rabbitmqSecurityEnv = settingsByName({
  RABBITMQ_CA_FILE: path.optional().describe("PEM CA certificate(s) the broker's certificate must chain to (needs an `amqps://` URL)"),
  RABBITMQ_CERT_FILE: path.optional().describe('client certificate, for a broker with `ssl_options.fail_if_no_peer_cert = true`; needs `RABBITMQ_KEY_FILE`'),
  RABBITMQ_KEY_FILE: path.optional().describe("the client certificate's private key (PEM)"),
  RABBITMQ_KEY_PASSPHRASE: z.string().optional().describe('passphrase of an encrypted private key'),
  RABBITMQ_PASSWORD_FILE: path
    .optional()
    .describe('the password of the user `RABBITMQ_URL` names (`amqps://event-gateway@host:5671`), instead of one in the URL'),
});

export const natsSecurityEnv = settingsByName({
  NATS_TLS: flag
    .optional()
    .describe(
      '`true` requires TLS with a `nats://` URL; on by itself with `NATS_CA_FILE` or a client certificate (without either, nats.js still upgrades when the server asks for TLS)',
    ),
  NATS_CA_FILE: path.optional().describe("PEM CA certificate(s) the server's certificate must chain to"),
  NATS_CERT_FILE: path.optional().describe('client certificate, for a server with `tls { verify: true }`; needs `NATS_KEY_FILE`'),
  NATS_KEY_FILE: path.optional().describe("the client certificate's private key (PEM)"),
  NATS_KEY_PASSPHRASE: z.string().optional().describe('passphrase of an encrypted private key'),
  NATS_USER: z.string().optional().describe('user to log in as, with `NATS_PASSWORD` or `NATS_PASSWORD_FILE`'),
  NATS_PASSWORD: z.string().optional().describe("the user's password"),
  NATS_PASSWORD_FILE: path.optional().describe("a file holding the user's password, instead of `NATS_PASSWORD`"),
  NATS_TOKEN: z.string().optional().describe('a token to log in with'),
  NATS_TOKEN_FILE: path.optional().describe('a file holding the token, instead of `NATS_TOKEN`'),
  NATS_NKEY_SEED_FILE: path.optional().describe("an NKey user's seed (`SU…`): the server's nonce is signed with it"),
  NATS_CREDS_FILE: path.optional().describe('a `.creds` file (user JWT and NKey seed, decentralized auth, as `nsc` writes it)'),
});

const securityEnv = z.object({ ...kafkaSecurityEnv, ...rabbitmqSecurityEnv, ...natsSecurityEnv });

/** The parsed environment as far as this module reads it. */
export type SecurityEnv = z.infer<typeof securityEnv> & { readonly RABBITMQ_URL: string; readonly NATS_URL: string };

/** TLS material read from the files the environment names. Absent fields use Node's defaults. */
export interface TlsSettings {
  /** CA certificates (PEM) to trust instead of the system's. */
  readonly ca?: string | undefined;
  /** The client certificate chain (PEM), for brokers that verify clients. */
  readonly cert?: string | undefined;
  /** The client certificate's private key (PEM). */
  readonly key?: Secret | undefined;
  readonly passphrase?: Secret | undefined;
}

export interface KafkaSasl {
  readonly mechanism: (typeof KAFKA_SASL_MECHANISMS)[number];
  readonly username: string;
  readonly password: Secret;
}

/** One way to log in to NATS. Credentials in `NATS_URL` become `user` or `token` in the adapter. */
export type NatsAuth =
  | { readonly kind: 'user'; readonly user: string; readonly password: Secret }
  | { readonly kind: 'token'; readonly token: Secret }
  /** An NKey user: the server sends a nonce, the client signs it with the seed. */
  | { readonly kind: 'nkey'; readonly seed: Secret }
  /** A decentralized-auth user: its JWT and NKey seed in one `.creds` file. */
  | { readonly kind: 'creds'; readonly creds: Secret };

/** Optional fields: adapters built in code (tests, embedding) may leave them out. */
export interface BrokerSecurity {
  readonly kafka: {
    /** Absent: plaintext. */
    readonly ssl?: TlsSettings | undefined;
    readonly sasl?: KafkaSasl | undefined;
  };
  readonly rabbitmq: {
    /** With an amqps:// URL: CA and client certificate (absent: the system's CAs, no client certificate). */
    readonly tls?: TlsSettings | undefined;
    /** `RABBITMQ_PASSWORD_FILE`, for the user the URL names (instead of a password in the URL). */
    readonly password?: Secret | undefined;
  };
  readonly nats: {
    /** TLS required (tls:// URL, `NATS_TLS`, or TLS files); absent: TLS only if the server asks for it. */
    readonly tls?: TlsSettings | undefined;
    /** Absent: credentials in the URL, if any. */
    readonly auth?: NatsAuth | undefined;
  };
}

type Issue = readonly [variable: string, message: string];

/** Combinations of variables that cannot work, each named by the variable to change. */
export function securityIssues(e: SecurityEnv): Issue[] {
  return [...kafkaIssues(e), ...rabbitmqIssues(e), ...natsIssues(e)];
}

function kafkaIssues(e: SecurityEnv): Issue[] {
  const issues: Issue[] = [...tlsFileIssues('KAFKA_SSL_', e.KAFKA_SSL_CERT_FILE, e.KAFKA_SSL_KEY_FILE, e.KAFKA_SSL_KEY_PASSPHRASE)];
  if (e.KAFKA_SSL === 'false') {
    for (const name of ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'] as const) {
      if (e[name]) issues.push([name, 'is TLS material, but KAFKA_SSL is false']);
    }
  }
  const password = e.KAFKA_SASL_PASSWORD !== undefined || e.KAFKA_SASL_PASSWORD_FILE !== undefined;
  if (e.KAFKA_SASL_PASSWORD !== undefined && e.KAFKA_SASL_PASSWORD_FILE !== undefined) {
    issues.push(['KAFKA_SASL_PASSWORD', 'set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both']);
  }
  if (e.KAFKA_SASL_MECHANISM) {
    if (!e.KAFKA_SASL_USERNAME) issues.push(['KAFKA_SASL_USERNAME', `is required with KAFKA_SASL_MECHANISM=${e.KAFKA_SASL_MECHANISM}`]);
    if (!password) issues.push(['KAFKA_SASL_PASSWORD', `(or KAFKA_SASL_PASSWORD_FILE) is required with KAFKA_SASL_MECHANISM=${e.KAFKA_SASL_MECHANISM}`]);
  } else if (e.KAFKA_SASL_USERNAME || password) {
    issues.push(['KAFKA_SASL_MECHANISM', `is required with SASL credentials: one of ${KAFKA_SASL_MECHANISMS.join(', ')}`]);
  }
  return issues;
}

function rabbitmqIssues(e: SecurityEnv): Issue[] {
  const issues: Issue[] = [...tlsFileIssues('RABBITMQ_', e.RABBITMQ_CERT_FILE, e.RABBITMQ_KEY_FILE, e.RABBITMQ_KEY_PASSPHRASE)];
  if (!e.RABBITMQ_URL.startsWith('amqps://')) {
    for (const name of ['RABBITMQ_CA_FILE', 'RABBITMQ_CERT_FILE', 'RABBITMQ_KEY_FILE'] as const) {
      if (e[name]) issues.push([name, 'is TLS material: RABBITMQ_URL must be an amqps:// URL to use it']);
    }
  }
  if (e.RABBITMQ_PASSWORD_FILE) {
    const url = URL.canParse(e.RABBITMQ_URL) ? new URL(e.RABBITMQ_URL) : undefined;
    if (!url?.username || url.password) {
      issues.push(['RABBITMQ_PASSWORD_FILE', 'needs a RABBITMQ_URL that names the user without a password (amqps://user@host:5671)']);
    }
  }
  return issues;
}

function natsIssues(e: SecurityEnv): Issue[] {
  const issues: Issue[] = [...tlsFileIssues('NATS_', e.NATS_CERT_FILE, e.NATS_KEY_FILE, e.NATS_KEY_PASSPHRASE)];
  if (e.NATS_TLS === 'false') {
    if (e.NATS_URL.startsWith('tls://')) issues.push(['NATS_TLS', 'is false, but NATS_URL is a tls:// URL']);
    for (const name of ['NATS_CA_FILE', 'NATS_CERT_FILE', 'NATS_KEY_FILE'] as const) {
      if (e[name]) issues.push([name, 'is TLS material, but NATS_TLS is false']);
    }
  }
  for (const [value, file] of [
    ['NATS_PASSWORD', 'NATS_PASSWORD_FILE'],
    ['NATS_TOKEN', 'NATS_TOKEN_FILE'],
  ] as const) {
    if (e[value] !== undefined && e[file] !== undefined) issues.push([value, `set ${value} or ${file}, not both`]);
  }
  const password = e.NATS_PASSWORD !== undefined || e.NATS_PASSWORD_FILE !== undefined;
  if (e.NATS_USER && !password) issues.push(['NATS_PASSWORD', '(or NATS_PASSWORD_FILE) is required with NATS_USER']);
  if (password && !e.NATS_USER) issues.push(['NATS_USER', 'is required with NATS_PASSWORD']);
  const urlCredentials = URL.canParse(e.NATS_URL) && new URL(e.NATS_URL).username !== '';
  const ways = [
    e.NATS_USER || password ? 'NATS_USER' : undefined,
    e.NATS_TOKEN !== undefined || e.NATS_TOKEN_FILE ? 'NATS_TOKEN' : undefined,
    e.NATS_NKEY_SEED_FILE ? 'NATS_NKEY_SEED_FILE' : undefined,
    e.NATS_CREDS_FILE ? 'NATS_CREDS_FILE' : undefined,
    urlCredentials ? 'NATS_URL' : undefined,
  ].filter((way) => way !== undefined);
  if (ways.length > 1) {
    issues.push([ways[1]!, `choose one way to log in to NATS; ${ways.join(', ')} are all set`]);
  }
  return issues;
}

/** A client certificate needs its key and the other way round; a passphrase needs a key. */
function tlsFileIssues(prefix: string, cert: string | undefined, key: string | undefined, passphrase: string | undefined): Issue[] {
  const issues: Issue[] = [];
  if (cert && !key) issues.push([`${prefix}KEY_FILE`, `is required with ${prefix}CERT_FILE (the client certificate's private key)`]);
  if (key && !cert) issues.push([`${prefix}CERT_FILE`, `is required with ${prefix}KEY_FILE (the client certificate)`]);
  if (passphrase !== undefined && !key) issues.push([`${prefix}KEY_PASSPHRASE`, `needs ${prefix}KEY_FILE`]);
  return issues;
}

/**
 * Reads every file the security variables name and checks what it holds (a PEM certificate, a
 * key the passphrase opens and that belongs to the certificate, an NKey seed). Call after
 * `securityIssues` found nothing. Throws `ConfigError` naming the variable.
 */
export function loadBrokerSecurity(e: SecurityEnv): BrokerSecurity {
  const kafkaTls = e.KAFKA_SSL === 'true' || Boolean(e.KAFKA_SSL_CA_FILE || e.KAFKA_SSL_CERT_FILE);
  const natsTls = e.NATS_TLS === 'true' || e.NATS_URL.startsWith('tls://') || Boolean(e.NATS_CA_FILE || e.NATS_CERT_FILE);
  return {
    kafka: {
      ssl: kafkaTls ? readTls('KAFKA_SSL_', e.KAFKA_SSL_CA_FILE, e.KAFKA_SSL_CERT_FILE, e.KAFKA_SSL_KEY_FILE, e.KAFKA_SSL_KEY_PASSPHRASE) : undefined,
      sasl: e.KAFKA_SASL_MECHANISM
        ? {
            mechanism: e.KAFKA_SASL_MECHANISM,
            username: e.KAFKA_SASL_USERNAME!,
            password: secretFrom('KAFKA_SASL_PASSWORD', e.KAFKA_SASL_PASSWORD, e.KAFKA_SASL_PASSWORD_FILE)!,
          }
        : undefined,
    },
    rabbitmq: {
      tls: e.RABBITMQ_URL.startsWith('amqps://')
        ? readTls('RABBITMQ_', e.RABBITMQ_CA_FILE, e.RABBITMQ_CERT_FILE, e.RABBITMQ_KEY_FILE, e.RABBITMQ_KEY_PASSPHRASE)
        : undefined,
      password: secretFrom('RABBITMQ_PASSWORD', undefined, e.RABBITMQ_PASSWORD_FILE),
    },
    nats: {
      tls: natsTls ? readTls('NATS_', e.NATS_CA_FILE, e.NATS_CERT_FILE, e.NATS_KEY_FILE, e.NATS_KEY_PASSPHRASE) : undefined,
      auth: natsAuth(e),
    },
  };
}

function natsAuth(e: SecurityEnv): NatsAuth | undefined {
  if (e.NATS_USER) return { kind: 'user', user: e.NATS_USER, password: secretFrom('NATS_PASSWORD', e.NATS_PASSWORD, e.NATS_PASSWORD_FILE)! };
  const token = secretFrom('NATS_TOKEN', e.NATS_TOKEN, e.NATS_TOKEN_FILE);
  if (token) return { kind: 'token', token };
  if (e.NATS_NKEY_SEED_FILE) {
    const seed = readSecretFile('NATS_NKEY_SEED_FILE', e.NATS_NKEY_SEED_FILE);
    if (!isUserSeed(seed.reveal())) {
      throw new ConfigError(`NATS_NKEY_SEED_FILE ${resolve(e.NATS_NKEY_SEED_FILE)}: does not hold an NKey user seed (one line starting with "SU")`);
    }
    return { kind: 'nkey', seed };
  }
  if (e.NATS_CREDS_FILE) {
    // As it is: nats.js finds the JWT and the seed by the line breaks around them.
    const creds = new Secret(readText('NATS_CREDS_FILE', e.NATS_CREDS_FILE), 'NATS_CREDS_FILE');
    if (!/-----BEGIN NATS USER JWT-----/.test(creds.reveal()) || !/-----BEGIN USER NKEY SEED-----/.test(creds.reveal())) {
      throw new ConfigError(`NATS_CREDS_FILE ${resolve(e.NATS_CREDS_FILE)}: not a NATS .creds file (a user JWT and its NKey seed)`);
    }
    return { kind: 'creds', creds };
  }
  return undefined;
}

function isUserSeed(seed: string): boolean {
  try {
    return seed.startsWith('SU') && fromSeed(new TextEncoder().encode(seed)).getPublicKey().startsWith('U');
  } catch {
    return false;
  }
}

/** `<name>` from the environment, or the contents of the file `<name>_FILE` names. */
function secretFrom(name: string, value: string | undefined, file: string | undefined): Secret | undefined {
  if (value !== undefined) return new Secret(value, name);
  if (file !== undefined) return readSecretFile(`${name}_FILE`, file);
  return undefined;
}

/** A secret file as Docker and Kubernetes write them: the trailing line break is not part of it. */
function readSecretFile(variable: string, file: string): Secret {
  const value = readText(variable, file).replace(/[\r\n]+$/, '');
  if (value === '') throw new ConfigError(`${variable} ${resolve(file)}: the file is empty`);
  return new Secret(value, variable);
}

function readText(variable: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`${variable} ${resolve(file)}: cannot read the file (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}

function readTls(
  prefix: string,
  caFile: string | undefined,
  certFile: string | undefined,
  keyFile: string | undefined,
  passphrase: string | undefined,
): TlsSettings {
  const ca = caFile ? readCertificates(`${prefix}CA_FILE`, caFile) : undefined;
  if (!certFile || !keyFile) return { ca };
  const cert = readCertificates(`${prefix}CERT_FILE`, certFile);
  const key = readSecretFile(`${prefix}KEY_FILE`, keyFile);
  const phrase = passphrase === undefined ? undefined : new Secret(passphrase, `${prefix}KEY_PASSPHRASE`);
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: key.reveal(), passphrase: phrase?.reveal() });
  } catch {
    // The cause is left out: OpenSSL's reason says nothing more, and a message must never carry key material.
    throw new ConfigError(
      phrase
        ? `${prefix}KEY_PASSPHRASE does not open the private key in ${prefix}KEY_FILE ${resolve(keyFile)} (or the file holds no PEM private key)`
        : `${prefix}KEY_FILE ${resolve(keyFile)}: no readable PEM private key (an encrypted one needs ${prefix}KEY_PASSPHRASE)`,
    );
  }
  if (!new X509Certificate(cert).checkPrivateKey(keyObject)) {
    throw new ConfigError(`${prefix}KEY_FILE ${resolve(keyFile)}: not the private key of the certificate in ${prefix}CERT_FILE ${resolve(certFile)}`);
  }
  return { ca, cert, key, passphrase: phrase };
}

/** PEM certificates; the first is parsed, so a file of something else is refused at start. */
function readCertificates(variable: string, file: string): string {
  const text = readText(variable, file);
  try {
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate');
    new X509Certificate(text);
  } catch {
    throw new ConfigError(`${variable} ${resolve(file)}: no PEM certificate in the file (-----BEGIN CERTIFICATE-----)`);
  }
  return text;
}

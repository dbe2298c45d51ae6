import { inspect } from 'node:util';
import { createUser } from '@nats-io/nkeys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { Secret } from '../../src/config/secret.js';
import { ConfigError } from '../../src/errors.js';
import { createTestPki, hasOpenssl, writeSecretFile, type TestPki } from '../helpers/secure-brokers/pki.js';

/** The message `loadConfig(env)` throws, or "" when it does not throw. */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
    return '';
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
}

describe('broker TLS and credentials: combinations', () => {
  it('leaves every broker plaintext and without credentials when nothing is set', () => {
    const { brokers } = loadConfig({});
    expect(brokers.kafka).toMatchObject({ ssl: undefined, sasl: undefined });
    expect(brokers.rabbitmq).toMatchObject({ tls: undefined, password: undefined });
    expect(brokers.nats).toMatchObject({ tls: undefined, auth: undefined });
  });

  it('names the variable that is missing or contradicts another', () => {
    expect(refusal({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_PASSWORD: 'pw' })).toContain(
      'KAFKA_SASL_USERNAME: is required with KAFKA_SASL_MECHANISM=scram-sha-256',
    );
    expect(refusal({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'gw' })).toContain('KAFKA_SASL_PASSWORD: (or KAFKA_SASL_PASSWORD_FILE) is required');
    expect(refusal({ KAFKA_SASL_USERNAME: 'gw', KAFKA_SASL_PASSWORD: 'pw' })).toContain('KAFKA_SASL_MECHANISM: is required with SASL credentials');
    expect(refusal({ KAFKA_SASL_MECHANISM: 'md5' })).toContain('KAFKA_SASL_MECHANISM:');
    expect(refusal({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'gw', KAFKA_SASL_PASSWORD: 'a', KAFKA_SASL_PASSWORD_FILE: '/x' })).toContain(
      'KAFKA_SASL_PASSWORD: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both',
    );
    expect(refusal({ KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: '/ca.pem' })).toContain('KAFKA_SSL_CA_FILE: is TLS material, but KAFKA_SSL is false');
    expect(refusal({ KAFKA_SSL_CERT_FILE: '/c.pem' })).toContain('KAFKA_SSL_KEY_FILE: is required with KAFKA_SSL_CERT_FILE');
    expect(refusal({ RABBITMQ_CA_FILE: '/ca.pem' })).toContain('RABBITMQ_CA_FILE: is TLS material: RABBITMQ_URL must be an amqps:// URL');
    expect(refusal({ RABBITMQ_PASSWORD_FILE: '/pw' })).toContain('RABBITMQ_PASSWORD_FILE: needs a RABBITMQ_URL that names the user without a password');
    expect(refusal({ NATS_TLS: 'false', NATS_URL: 'tls://127.0.0.1:4222' })).toContain('NATS_TLS: is false, but NATS_URL is a tls:// URL');
    expect(refusal({ NATS_USER: 'gw' })).toContain('NATS_PASSWORD: (or NATS_PASSWORD_FILE) is required with NATS_USER');
    expect(refusal({ NATS_TOKEN: 'tok', NATS_CREDS_FILE: '/x.creds' })).toContain(
      'NATS_CREDS_FILE: choose one way to log in to NATS; NATS_TOKEN, NATS_CREDS_FILE are all set',
    );
    expect(refusal({ NATS_URL: 'nats://gw:pw@127.0.0.1:4222', NATS_TOKEN: 'tok' })).toContain('choose one way to log in to NATS; NATS_TOKEN, NATS_URL');
  });

  it('names an unreadable file by variable and path', () => {
    expect(refusal({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'gw', KAFKA_SASL_PASSWORD_FILE: '/nonexistent/kafka-password' })).toBe(
      'KAFKA_SASL_PASSWORD_FILE /nonexistent/kafka-password: cannot read the file (ENOENT)',
    );
    expect(refusal({ NATS_URL: 'tls://127.0.0.1:4222', NATS_CA_FILE: '/nonexistent/ca.pem' })).toBe(
      'NATS_CA_FILE /nonexistent/ca.pem: cannot read the file (ENOENT)',
    );
  });
});

describe('a Secret', () => {
  it('shows where it came from, never its value, however it is printed', () => {
    const secret = new Secret('hunter2-value', 'KAFKA_SASL_PASSWORD');
    for (const shown of [JSON.stringify({ secret }), inspect({ secret }), `${secret}`, String(secret)]) {
      expect(shown).toContain('[secret from KAFKA_SASL_PASSWORD]');
      expect(shown).not.toContain('hunter2-value');
    }
    expect(secret.reveal()).toBe('hunter2-value');
  });
});

describe.skipIf(!hasOpenssl())('broker TLS and credentials: files', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
  });
  afterAll(() => pki?.remove());

  it('reads secrets from files without their trailing line break, and never shows them in the configuration', () => {
    const password = 'kafka-password-123';
    const config = loadConfig({
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'gateway',
      KAFKA_SASL_PASSWORD_FILE: writeSecretFile(pki, 'kafka-pw', `${password}\r\n`),
      RABBITMQ_URL: 'amqps://gateway@rabbit.example:5671',
      RABBITMQ_PASSWORD_FILE: writeSecretFile(pki, 'rabbit-pw', 'rabbit-password-123\n'),
      RABBITMQ_CERT_FILE: pki.clientCertFile,
      RABBITMQ_KEY_FILE: pki.clientKeyFile,
      NATS_TOKEN_FILE: writeSecretFile(pki, 'nats-token', 'nats-token-123\n'),
    });
    const { kafka, rabbitmq, nats } = config.brokers;
    expect(kafka.ssl?.ca).toBe(pki.read(pki.caFile));
    expect(kafka.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'gateway' });
    expect(kafka.sasl?.password.reveal()).toBe(password);
    expect(kafka.sasl?.password.source).toBe('KAFKA_SASL_PASSWORD_FILE');
    expect(rabbitmq.password?.reveal()).toBe('rabbit-password-123');
    expect(rabbitmq.tls).toMatchObject({ ca: undefined, cert: pki.read(pki.clientCertFile) });
    expect(nats.auth).toMatchObject({ kind: 'token' });
    const printed = JSON.stringify(config) + inspect(config, { depth: 10 });
    for (const value of [password, 'rabbit-password-123', 'nats-token-123', pki.read(pki.clientKeyFile).split('\n')[1]!]) {
      expect(printed).not.toContain(value);
    }
  });

  it('turns TLS on for NATS with a tls:// URL, NATS_TLS or a CA file', () => {
    expect(loadConfig({ NATS_URL: 'tls://127.0.0.1:4222' }).brokers.nats.tls).toEqual({ ca: undefined });
    expect(loadConfig({ NATS_TLS: 'true' }).brokers.nats.tls).toEqual({ ca: undefined });
    expect(loadConfig({ NATS_CA_FILE: pki.caFile }).brokers.nats.tls?.ca).toContain('BEGIN CERTIFICATE');
    expect(loadConfig({ KAFKA_SSL: 'true' }).brokers.kafka.ssl).toEqual({ ca: undefined });
  });

  it('checks at load what the files hold: a certificate, a key its passphrase opens and that fits the certificate', () => {
    expect(refusal({ KAFKA_SSL_CA_FILE: pki.clientKeyFile })).toBe(
      `KAFKA_SSL_CA_FILE ${pki.clientKeyFile}: no PEM certificate in the file (-----BEGIN CERTIFICATE-----)`,
    );
    const tls = { NATS_CERT_FILE: pki.clientCertFile, NATS_KEY_FILE: pki.encryptedClientKeyFile };
    expect(refusal(tls)).toMatch(/^NATS_KEY_FILE .*: no readable PEM private key \(an encrypted one needs NATS_KEY_PASSPHRASE\)$/);
    expect(refusal({ ...tls, NATS_KEY_PASSPHRASE: 'not-it' })).toMatch(/^NATS_KEY_PASSPHRASE does not open the private key in NATS_KEY_FILE /);
    expect(loadConfig({ ...tls, NATS_KEY_PASSPHRASE: pki.clientKeyPassphrase }).brokers.nats.tls?.passphrase?.source).toBe('NATS_KEY_PASSPHRASE');
    expect(refusal({ NATS_CERT_FILE: pki.clientCertFile, NATS_KEY_FILE: pki.serverKeyFile })).toMatch(
      /^NATS_KEY_FILE .*server\.key: not the private key of the certificate in NATS_CERT_FILE .*client\.crt$/,
    );
  });

  it('checks that an NKey seed file holds a user seed', () => {
    const user = createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    expect(loadConfig({ NATS_NKEY_SEED_FILE: writeSecretFile(pki, 'seed', `${seed}\n`) }).brokers.nats.auth).toMatchObject({ kind: 'nkey' });
    expect(refusal({ NATS_NKEY_SEED_FILE: writeSecretFile(pki, 'not-a-seed', 'SUNOTASEED\n') })).toMatch(
      /^NATS_NKEY_SEED_FILE .*: does not hold an NKey user seed/,
    );
    expect(refusal({ NATS_CREDS_FILE: writeSecretFile(pki, 'x.creds', seed) })).toMatch(/^NATS_CREDS_FILE .*: not a NATS \.creds file/);
  });
});

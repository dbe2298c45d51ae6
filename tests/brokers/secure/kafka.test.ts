import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBroker } from '../../../src/brokers/kafka/kafka-broker.js';
import { loadConfig } from '../../../src/config/config.js';
import { BrokerAuthenticationError } from '../../../src/errors.js';
import type { Logger } from '../../../src/util/logger.js';
import { requireTool } from '../../helpers/brokers.js';
import { uniqueName } from '../../helpers/events.js';
import { captureLogs, everythingIn, expectNoSecrets, publishAndReceive, startGatewayExpectingFailure } from '../../helpers/secure-brokers/gateway.js';
import { hasKafkaJars, startSecureKafka, type SecureKafka } from '../../helpers/secure-brokers/kafka.js';
import { createTestPki, hasOpenssl, writeSecretFile, type TestPki } from '../../helpers/secure-brokers/pki.js';

if (process.env['CI'] && !hasKafkaJars()) throw new Error('Kafka jars are missing (npm run brokers up resolves them); CI is set, so this fails the run');

function kafkaBroker(env: Record<string, string>, logger: Logger): KafkaBroker {
  const config = loadConfig({ BROKER: 'kafka', KAFKA_CLIENT_ID: uniqueName('secure'), KAFKA_PARTITIONS: '1', ...env });
  return new KafkaBroker({ ...config.brokers.kafka, topics: {} }, logger);
}

// One Kafka of this file's own (about 10 s to start), with a SASL_SSL and a mutual-TLS listener.
const runs = requireTool('Kafka over TLS', hasOpenssl() && hasKafkaJars(), 'openssl or the Kafka jars are missing (npm run brokers up)');

describe.runIf(runs)('Kafka over TLS with SASL', () => {
  let pki: TestPki;
  let kafka: SecureKafka;

  beforeAll(async () => {
    pki = await createTestPki();
    kafka = await startSecureKafka(pki);
  }, 120_000);

  afterAll(async () => {
    await kafka?.stop();
    pki?.remove();
  });

  it('SCRAM-SHA-512 with the password in a file: publishes, subscribes and consumes; no secret in the logs', async () => {
    const { username, password } = kafka.users.scram512;
    const { logger, text } = captureLogs();
    const env = {
      KAFKA_BROKERS: kafka.saslSsl,
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: username,
      KAFKA_SASL_PASSWORD_FILE: writeSecretFile(pki, 'kafka-password', `${password}\n`),
    };
    await publishAndReceive(kafkaBroker(env, logger));
    expect(text()).toContain('connected to kafka');
    expectNoSecrets(text(), [password], 'the logs');
  });

  it('SCRAM-SHA-256 and PLAIN, with the password in the environment', async () => {
    for (const [mechanism, user] of [
      ['scram-sha-256', kafka.users.scram256],
      ['plain', kafka.users.plain],
    ] as const) {
      const { logger, text } = captureLogs();
      const env = {
        KAFKA_BROKERS: kafka.saslSsl,
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: pki.caFile,
        KAFKA_SASL_MECHANISM: mechanism,
        KAFKA_SASL_USERNAME: user.username,
        KAFKA_SASL_PASSWORD: user.password,
      };
      await publishAndReceive(kafkaBroker(env, logger), { consume: false });
      expectNoSecrets(text(), [user.password], `the logs (${mechanism})`);
    }
  });

  it('a client certificate whose key is encrypted, on a listener that requires one', async () => {
    const { logger, text } = captureLogs();
    const env = {
      KAFKA_BROKERS: kafka.mutualTls,
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SSL_CERT_FILE: pki.clientCertFile,
      KAFKA_SSL_KEY_FILE: pki.encryptedClientKeyFile,
      KAFKA_SSL_KEY_PASSPHRASE: pki.clientKeyPassphrase,
    };
    await publishAndReceive(kafkaBroker(env, logger), { consume: false });
    expectNoSecrets(text(), [pki.clientKeyPassphrase, pki.read(pki.encryptedClientKeyFile).split('\n')[1]!], 'the logs');
  });

  it('a wrong password stops the start within 15 s, naming KAFKA_SASL_PASSWORD, and is in no log line nor the error', async () => {
    const wrong = `wrong-${kafka.users.scram256.password}`;
    const { logger, text } = captureLogs();
    const env = {
      BROKER: 'kafka',
      KAFKA_BROKERS: kafka.saslSsl,
      KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
      KAFKA_SASL_USERNAME: kafka.users.scram256.username,
      KAFKA_SASL_PASSWORD: wrong,
    };
    const { error, elapsedMs } = await startGatewayExpectingFailure(env, logger);
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toMatch(
      /^KAFKA_SASL_PASSWORD: Kafka at 127\.0\.0\.1:\d+ refused user "scram256-user" \(SASL SCRAM-SHA-256\): authentication failed/,
    );
    expect(elapsedMs).toBeLessThan(15_000);
    expectNoSecrets(text(), [wrong], 'the logs');
    expectNoSecrets(everythingIn(error), [wrong], 'the error');
  });

  it('a CA that did not sign the broker certificate stops the start, naming KAFKA_SSL_CA_FILE', async () => {
    const env = {
      BROKER: 'kafka',
      KAFKA_BROKERS: kafka.saslSsl,
      KAFKA_SSL_CA_FILE: pki.otherCaFile,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: kafka.users.plain.username,
      KAFKA_SASL_PASSWORD: kafka.users.plain.password,
    };
    const { error, elapsedMs } = await startGatewayExpectingFailure(env, captureLogs().logger);
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toMatch(/^KAFKA_SSL_CA_FILE: the TLS certificate of Kafka at 127\.0\.0\.1:\d+ is not trusted/);
    expect(elapsedMs).toBeLessThan(15_000);
  });

  it('no client certificate on a listener that requires one stops the start, naming KAFKA_SSL_CERT_FILE', async () => {
    const env = { BROKER: 'kafka', KAFKA_BROKERS: kafka.mutualTls, KAFKA_SSL_CA_FILE: pki.caFile };
    const { error, elapsedMs } = await startGatewayExpectingFailure(env, captureLogs().logger);
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toMatch(
      /^KAFKA_SSL_CERT_FILE: Kafka at 127\.0\.0\.1:\d+ refused the client certificate: ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE$/,
    );
    expect(elapsedMs).toBeLessThan(15_000);
  });
});

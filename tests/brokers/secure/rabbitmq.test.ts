import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitMqBroker } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { loadConfig } from '../../../src/config/config.js';
import { BrokerAuthenticationError } from '../../../src/errors.js';
import type { Logger } from '../../../src/util/logger.js';
import { requireBroker } from '../../helpers/brokers.js';
import { uniqueName } from '../../helpers/events.js';
import { captureLogs, everythingIn, expectNoSecrets, publishAndReceive, startGatewayExpectingFailure } from '../../helpers/secure-brokers/gateway.js';
import { createTestPki, hasOpenssl, writeSecretFile, type TestPki } from '../../helpers/secure-brokers/pki.js';
import { startTlsTerminator, type TlsTerminator } from '../../helpers/secure-brokers/tls-terminator.js';

function rabbitMqBroker(env: Record<string, string>, logger: Logger): RabbitMqBroker {
  const config = loadConfig({ BROKER: 'rabbitmq', ...env });
  return new RabbitMqBroker({ ...config.brokers.rabbitmq, topics: {}, reconnect: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 } }, logger);
}

/*
 * The machine's RabbitMQ listens on 5672 without TLS and is not reconfigured: a TLS endpoint of
 * the test's own (Node's TLS server, demanding a client certificate from the test CA) stands in
 * front of it, so the adapter's TLS options meet a real TLS server with the real broker behind.
 */
if (hasOpenssl() && (await requireBroker('RabbitMQ', '127.0.0.1', 5672))) {
  describe('RabbitMQ over TLS with a client certificate', () => {
    let pki: TestPki;
    let tls: TlsTerminator;

    beforeAll(async () => {
      pki = await createTestPki();
      tls = await startTlsTerminator(pki, 5672);
    });

    afterAll(async () => {
      await tls?.close();
      pki?.remove();
    });

    const clientCertificate = () => ({ RABBITMQ_CA_FILE: pki.caFile, RABBITMQ_CERT_FILE: pki.clientCertFile, RABBITMQ_KEY_FILE: pki.clientKeyFile });

    it('publishes, subscribes and consumes with the password in a file; the key is in no log line', async () => {
      const { logger, text } = captureLogs();
      const env = {
        RABBITMQ_URL: `amqps://guest@127.0.0.1:${tls.port}`,
        RABBITMQ_PASSWORD_FILE: writeSecretFile(pki, 'rabbitmq-password', 'guest\n'),
        RABBITMQ_CA_FILE: pki.caFile,
        RABBITMQ_CERT_FILE: pki.clientCertFile,
        RABBITMQ_KEY_FILE: pki.encryptedClientKeyFile,
        RABBITMQ_KEY_PASSPHRASE: pki.clientKeyPassphrase,
      };
      const seen = tls.clients.length;
      await publishAndReceive(rabbitMqBroker(env, logger));
      // The publishing and the subscriptions' connection, each with the gateway's certificate.
      expect(tls.clients.slice(seen)).toEqual(['gateway', 'gateway']);
      expectNoSecrets(text(), [pki.clientKeyPassphrase, pki.read(pki.encryptedClientKeyFile).split('\n')[1]!], 'the logs');
    });

    it('a wrong password stops the start within 15 s, naming RABBITMQ_PASSWORD_FILE, and is in no log line nor the error', async () => {
      const wrong = `wrong-${uniqueName('password')}`;
      const { logger, text } = captureLogs();
      const env = {
        BROKER: 'rabbitmq',
        RABBITMQ_URL: `amqps://guest@127.0.0.1:${tls.port}`,
        RABBITMQ_PASSWORD_FILE: writeSecretFile(pki, 'wrong-password', wrong),
        ...clientCertificate(),
      };
      const { error, elapsedMs } = await startGatewayExpectingFailure(env, logger);
      expect(error).toBeInstanceOf(BrokerAuthenticationError);
      expect((error as Error).message).toMatch(/^RABBITMQ_PASSWORD_FILE: RabbitMQ at amqps:\/\/\*\*\*@127\.0\.0\.1:\d+ refused the login of user "guest"/);
      expect(elapsedMs).toBeLessThan(15_000);
      expectNoSecrets(text(), [wrong], 'the logs');
      expectNoSecrets(everythingIn(error), [wrong], 'the error');
    });

    it('a wrong password in RABBITMQ_URL is named as RABBITMQ_URL, masked', async () => {
      const wrong = `wrong-${uniqueName('password')}`;
      const { logger, text } = captureLogs();
      const broker = rabbitMqBroker({ RABBITMQ_URL: `amqps://guest:${wrong}@127.0.0.1:${tls.port}`, ...clientCertificate() }, logger);
      const error = await broker.connect().then(
        () => null,
        (e: unknown) => e,
      );
      await broker.close();
      expect(error).toBeInstanceOf(BrokerAuthenticationError);
      expect((error as Error).message).toMatch(/^RABBITMQ_URL: RabbitMQ at amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ refused the login/);
      expectNoSecrets(text(), [wrong], 'the logs');
      expectNoSecrets(everythingIn(error), [wrong], 'the error');
    });

    it('a CA that did not sign the server certificate stops the start, naming RABBITMQ_CA_FILE', async () => {
      const env = { BROKER: 'rabbitmq', RABBITMQ_URL: `amqps://guest:guest@127.0.0.1:${tls.port}`, ...clientCertificate(), RABBITMQ_CA_FILE: pki.otherCaFile };
      const { error, elapsedMs } = await startGatewayExpectingFailure(env, captureLogs().logger);
      expect(error).toBeInstanceOf(BrokerAuthenticationError);
      expect((error as Error).message).toMatch(/^RABBITMQ_CA_FILE: the TLS certificate of RabbitMQ at amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ is not trusted/);
      expect(elapsedMs).toBeLessThan(15_000);
    });

    it('no client certificate stops the start, naming RABBITMQ_CERT_FILE', async () => {
      const env = { BROKER: 'rabbitmq', RABBITMQ_URL: `amqps://guest:guest@127.0.0.1:${tls.port}`, RABBITMQ_CA_FILE: pki.caFile };
      const { error, elapsedMs } = await startGatewayExpectingFailure(env, captureLogs().logger);
      expect(error).toBeInstanceOf(BrokerAuthenticationError);
      expect((error as Error).message).toMatch(/^RABBITMQ_CERT_FILE: RabbitMQ at .* refused the client certificate: tlsv13 alert certificate required/);
      expect(elapsedMs).toBeLessThan(15_000);
    });
  });
}

import { createUser } from '@nats-io/nkeys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import { loadConfig } from '../../../src/config/config.js';
import { BrokerAuthenticationError } from '../../../src/errors.js';
import type { Logger } from '../../../src/util/logger.js';
import { requireTool } from '../../helpers/brokers.js';
import { uniqueName } from '../../helpers/events.js';
import { captureLogs, everythingIn, expectNoSecrets, publishAndReceive, startGatewayExpectingFailure } from '../../helpers/secure-brokers/gateway.js';
import { hasNatsServer, startSecureNats, type SecureNatsServer } from '../../helpers/secure-brokers/nats.js';
import { createTestPki, hasOpenssl, writeSecretFile, type TestPki } from '../../helpers/secure-brokers/pki.js';

const password = `pw-${uniqueName('nats')}`;
const token = `tok-${uniqueName('nats')}`;
const nkey = createUser();
const seed = new TextDecoder().decode(nkey.getSeed());

/**
 * Publishes, subscribes and consumes through a NatsBroker built from `env` as the gateway builds
 * it, and checks that none of `secrets` reached the logs (at trace level).
 */
async function roundTrip(env: Record<string, string>, secrets: string[]): Promise<void> {
  const { logger, text } = captureLogs();
  await publishAndReceive(natsBroker(env, logger), { timeoutMs: 10_000 });
  expectNoSecrets(text(), secrets, 'the logs');
}

function natsBroker(env: Record<string, string>, logger: Logger): NatsBroker {
  const config = loadConfig({ BROKER: 'nats', ...env });
  return new NatsBroker({ ...config.brokers.nats, topics: {} }, logger);
}

const runs = requireTool('NATS over TLS', hasOpenssl() && hasNatsServer(), 'openssl or nats-server is missing');

describe.runIf(runs)('NATS over TLS with credentials', () => {
  let pki: TestPki;
  /** Demands a client certificate; users with a password and an NKey user. */
  let users: SecureNatsServer;
  let tokens: SecureNatsServer;
  let operator: SecureNatsServer;

  beforeAll(async () => {
    pki = await createTestPki();
    [users, tokens, operator] = await Promise.all([
      startSecureNats(pki, { verify: true, logins: { users: [{ user: 'gateway', password }, { nkey: nkey.getPublicKey() }] } }),
      startSecureNats(pki, { logins: { token } }),
      startSecureNats(pki, { logins: { creds: true } }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([users, tokens, operator].map((server) => server?.stop()));
    pki?.remove();
  });

  const clientCertificate = () => ({ NATS_CA_FILE: pki.caFile, NATS_CERT_FILE: pki.clientCertFile, NATS_KEY_FILE: pki.clientKeyFile });

  it('a user whose password is in a file, with a client certificate', async () => {
    const env = {
      NATS_URL: users.tlsUrl,
      ...clientCertificate(),
      NATS_USER: 'gateway',
      NATS_PASSWORD_FILE: writeSecretFile(pki, 'nats-password', `${password}\n`),
    };
    await roundTrip(env, [password, pki.read(pki.clientKeyFile).split('\n')[1]!]);
  });

  it('an NKey user, with a client key encrypted under a passphrase', async () => {
    const env = {
      NATS_URL: users.url.replace('nats://', 'tls://'),
      NATS_CA_FILE: pki.caFile,
      NATS_CERT_FILE: pki.clientCertFile,
      NATS_KEY_FILE: pki.encryptedClientKeyFile,
      NATS_KEY_PASSPHRASE: pki.clientKeyPassphrase,
      NATS_NKEY_SEED_FILE: writeSecretFile(pki, 'nats-seed', `${seed}\n`),
    };
    await roundTrip(env, [seed, pki.clientKeyPassphrase]);
  });

  it('a token from a file, TLS asked for by NATS_TLS', async () => {
    const env = { NATS_URL: tokens.url, NATS_TLS: 'true', NATS_CA_FILE: pki.caFile, NATS_TOKEN_FILE: writeSecretFile(pki, 'nats-token', token) };
    await roundTrip(env, [token]);
  });

  it('a creds file (operator, account and user JWTs)', async () => {
    const creds = pki.read(operator.credsFile!);
    const userSeed = /SU[A-Z0-9]{56}/.exec(creds)![0];
    await roundTrip({ NATS_URL: operator.tlsUrl, NATS_CA_FILE: pki.caFile, NATS_CREDS_FILE: operator.credsFile! }, [userSeed]);
  });

  it('a wrong password stops the start within 15 s, naming NATS_PASSWORD, and is in no log line nor the error', async () => {
    const wrong = `wrong-${password}`;
    const { logger, text } = captureLogs();
    const env = { BROKER: 'nats', NATS_URL: users.tlsUrl, ...clientCertificate(), NATS_USER: 'gateway', NATS_PASSWORD: wrong };
    const { error, elapsedMs } = await startGatewayExpectingFailure(env, logger);
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toMatch(/^NATS_PASSWORD: NATS at tls:\/\/127\.0\.0\.1:\d+ refused user "gateway": Authorization Violation/);
    expect(elapsedMs).toBeLessThan(15_000);
    expectNoSecrets(text(), [wrong], 'the logs');
    expectNoSecrets(everythingIn(error), [wrong], 'the error');
  });

  it('a wrong token in the URL is named as NATS_URL, masked', async () => {
    const wrong = `wrong-${token}`;
    const broker = natsBroker({ NATS_URL: tokens.url.replace('nats://', `tls://${wrong}@`), NATS_CA_FILE: pki.caFile }, captureLogs().logger);
    const error = await broker.connect().then(
      () => null,
      (e: unknown) => e,
    );
    await broker.close();
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toMatch(/^NATS_URL: NATS at tls:\/\/\*\*\*@127\.0\.0\.1:\d+ refused the token/);
    expectNoSecrets(everythingIn(error), [wrong], 'the error');
  });

  it('a server certificate the CA file did not sign stops the start, naming NATS_CA_FILE', async () => {
    const { logger } = captureLogs();
    const env = { BROKER: 'nats', NATS_URL: tokens.tlsUrl, NATS_CA_FILE: pki.otherCaFile, NATS_TOKEN: token };
    const { error, elapsedMs } = await startGatewayExpectingFailure(env, logger);
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toMatch(/^NATS_CA_FILE: the TLS certificate of NATS at tls:\/\/127\.0\.0\.1:\d+ is not trusted/);
    expect(elapsedMs).toBeLessThan(15_000);
  });
});

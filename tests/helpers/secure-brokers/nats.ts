import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { NATS_SERVER } from '../../../scripts/brokers/index.js';
import { startOwnNatsServer, type OwnNatsServer } from '../nats.js';
import type { TestPki } from './pki.js';

export const hasNatsServer = (): boolean => existsSync(NATS_SERVER);

/** Who may log in to a secure test server; nats-server takes either users or one token. */
export type NatsLogins =
  | { readonly users: readonly ({ readonly user: string; readonly password: string } | { readonly nkey: string })[] }
  | { readonly token: string }
  /** Decentralized auth: an operator, one account with JetStream, and a user whose `.creds` file is returned. */
  | { readonly creds: true };

export interface SecureNatsServer extends OwnNatsServer {
  /** `tls://127.0.0.1:<port>`. */
  readonly tlsUrl: string;
  /** With `{ creds: true }`: the user's `.creds` file. */
  readonly credsFile?: string | undefined;
}

/**
 * A nats-server of the test's own, on a free port, with JetStream in a store of its own, that
 * accepts TLS connections only (the certificate from `pki`) and the given logins. With `verify`
 * it also demands a client certificate signed by the test CA.
 */
export async function startSecureNats(pki: TestPki, options: { logins: NatsLogins; verify?: boolean }): Promise<SecureNatsServer> {
  const name = `nats-${randomBytes(4).toString('hex')}`;
  const { config, credsFile } = await loginConfig(pki, name, options.logins);
  const conf = join(pki.dir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      'tls {',
      `  cert_file: ${JSON.stringify(pki.serverCertFile)}`,
      `  key_file: ${JSON.stringify(pki.serverKeyFile)}`,
      `  ca_file: ${JSON.stringify(pki.caFile)}`,
      `  verify: ${options.verify ? 'true' : 'false'}`,
      '  timeout: 2',
      '}',
      config,
    ].join('\n'),
  );
  const server = await startOwnNatsServer({ jetstream: true, args: ['-c', conf] });
  return { ...server, tlsUrl: `tls://127.0.0.1:${server.port}`, credsFile };
}

async function loginConfig(pki: TestPki, name: string, logins: NatsLogins): Promise<{ config: string; credsFile?: string }> {
  if ('token' in logins) return { config: `authorization { token: ${JSON.stringify(logins.token)} }` };
  if ('users' in logins) {
    const users = logins.users.map((login) =>
      'nkey' in login ? `    { nkey: ${login.nkey} }` : `    { user: ${JSON.stringify(login.user)}, password: ${JSON.stringify(login.password)} }`,
    );
    return { config: ['authorization {', '  users: [', ...users, '  ]', '}'].join('\n') };
  }
  // Operator → account (JetStream enabled through its limits) → user, resolved from memory;
  // JetStream also needs a system account.
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = await encodeOperator('test-operator', operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
  const accountJwt = await encodeAccount(
    'gateway-account',
    account,
    {
      limits: {
        mem_storage: -1,
        disk_storage: -1,
        streams: -1,
        consumer: -1,
        subs: -1,
        data: -1,
        payload: -1,
        conn: -1,
        imports: -1,
        exports: -1,
        leaf: -1,
        wildcards: true,
      },
    },
    { signer: operator },
  );
  const userJwt = await encodeUser('gateway', user, account);
  const credsFile = join(pki.dir, `${name}.creds`);
  writeFileSync(credsFile, fmtCreds(userJwt, user), { mode: 0o600 });
  const config = [
    `operator: ${JSON.stringify(operatorJwt)}`,
    'resolver: MEMORY',
    `system_account: ${system.getPublicKey()}`,
    `resolver_preload: { ${system.getPublicKey()}: ${JSON.stringify(systemJwt)}, ${account.getPublicKey()}: ${JSON.stringify(accountJwt)} }`,
  ].join('\n');
  return { config, credsFile };
}

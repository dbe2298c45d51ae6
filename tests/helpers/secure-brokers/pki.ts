import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const OPENSSL = '/usr/bin/openssl';

/** Whether the machine has what `createTestPki` runs. */
export const hasOpenssl = (): boolean => existsSync(OPENSSL);

/** A throwaway certificate authority and the certificates it signed, as PEM files in `dir`. */
export interface TestPki {
  readonly dir: string;
  /** The CA certificate: what clients and servers are told to trust. */
  readonly caFile: string;
  /** Server certificate for `localhost` and `127.0.0.1`, its key, and both (plus the CA) in one file for Kafka's PEM keystore. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly serverKeystoreFile: string;
  /** Client certificate (CN=gateway) and its key, plain and encrypted with `clientKeyPassphrase`. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly encryptedClientKeyFile: string;
  readonly clientKeyPassphrase: string;
  /** A CA that signed nothing here: trusting only it makes every certificate above untrusted. */
  readonly otherCaFile: string;
  read(file: string): string;
  remove(): void;
}

/**
 * Makes a CA and certificates signed by it with `openssl` (EC P-256 keys, valid two days) in a new
 * temporary folder. Takes a few hundred milliseconds.
 */
export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-pki-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run(OPENSSL, args, { cwd: dir });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  const selfSignedCa = (name: string, cn: string) =>
    openssl('req', '-x509', ...newKey, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`);
  const signed = async (name: string, cn: string, extensions: string) => {
    await openssl('req', '-new', ...newKey, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(file(`${name}.ext`), extensions);
    await openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-out',
      file(`${name}.crt`),
      '-extfile',
      file(`${name}.ext`),
    );
  };

  await Promise.all([selfSignedCa('ca', 'event-gateway test CA'), selfSignedCa('other-ca', 'unrelated test CA')]);
  await Promise.all([
    signed('server', 'localhost', 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n'),
    signed('client', 'gateway', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n'),
  ]);
  const clientKeyPassphrase = `pass-${randomBytes(6).toString('hex')}`;
  await openssl(
    'pkcs8',
    '-topk8',
    '-in',
    file('client.key'),
    '-out',
    file('client-encrypted.key'),
    '-passout',
    `pass:${clientKeyPassphrase}`,
    '-v2',
    'aes-256-cbc',
  );
  const read = (path: string) => readFileSync(path, 'utf8');
  writeFileSync(file('server-keystore.pem'), read(file('server.key')) + read(file('server.crt')) + read(file('ca.crt')));

  return {
    dir,
    caFile: file('ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    serverKeystoreFile: file('server-keystore.pem'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
    encryptedClientKeyFile: file('client-encrypted.key'),
    clientKeyPassphrase,
    otherCaFile: file('other-ca.crt'),
    read,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Writes `content` to a new file in the PKI's folder (a password file, say) and returns its path. */
export function writeSecretFile(pki: TestPki, name: string, content: string): string {
  const path = join(pki.dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

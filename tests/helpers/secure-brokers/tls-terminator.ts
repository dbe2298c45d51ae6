import type { Socket } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import type { TestPki } from './pki.js';
import { pipeTo } from '../tcp-proxy.js';

export interface TlsTerminator {
  /** The TLS port on 127.0.0.1. */
  readonly port: number;
  /** Subjects (CN) of the client certificates of the connections accepted so far. */
  readonly clients: readonly string[];
  close(): Promise<void>;
}

/**
 * A TLS endpoint in front of a plain TCP service (the machine's RabbitMQ on 5672, which must not
 * be reconfigured): it presents the PKI's server certificate, demands a client certificate signed
 * by the test CA (unless `requireClientCert` is false), and pipes each verified connection to
 * `targetPort`. The broker client under test thus meets a real TLS server with the real broker
 * behind it; only the broker itself does not see the certificate.
 */
export async function startTlsTerminator(pki: TestPki, targetPort: number, { requireClientCert = true } = {}): Promise<TlsTerminator> {
  const sockets = new Set<Socket>();
  const clients: string[] = [];
  const server = createServer(
    {
      key: pki.read(pki.serverKeyFile),
      cert: pki.read(pki.serverCertFile),
      ca: pki.read(pki.caFile),
      requestCert: requireClientCert,
      rejectUnauthorized: requireClientCert,
    },
    (client: TLSSocket) => {
      const subject = client.getPeerCertificate()?.subject?.CN;
      if (subject) clients.push(String(subject));
      pipeTo(client, targetPort, '127.0.0.1', sockets);
    },
  );
  // A refused handshake is the point of some tests, not an error of this helper.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    clients,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import { createServer, connect, type Server, type Socket } from 'node:net';

/** A TCP proxy a test can cut, as if the server behind it went away, and bring back on the same port. */
export interface TcpProxy {
  readonly port: number;
  /** Closes every connection and stops listening: new connections are refused. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Pipes `client` both ways to a new connection to `targetHost:targetPort`, keeping both sockets in
 * `sockets` while they live; either side closing or failing ends both.
 */
export function pipeTo(client: Socket, targetPort: number, targetHost: string, sockets: Set<Socket>): void {
  const upstream = connect(targetPort, targetHost);
  const end = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  for (const socket of [client, upstream]) {
    sockets.add(socket);
    socket.on('error', end).on('close', end);
  }
  client.pipe(upstream).pipe(client);
}

export async function createTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer((client) => pipeTo(client, targetPort, targetHost, sockets));
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => {
        port = (next.address() as { port: number }).port;
        server = next;
        resolve();
      });
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
      for (const socket of sockets) socket.destroy();
    });
  await listen();
  return {
    get port() {
      return port;
    },
    cut,
    restore: listen,
    close: cut,
  };
}

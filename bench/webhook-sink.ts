/**
 * The webhook the consume benchmark delivers to, in a process of its own: answers every POST
 * with 204 at once and counts what it answered. `POST /control/hold` keeps new deliveries
 * waiting until `POST /control/release`, so a backlog can build up at the broker before the
 * clock starts; `GET /control/stats` reports answered and unique deliveries and when the last
 * one was answered; `POST /control/reset` starts counting afresh.
 *
 * Run as a child: `node --import tsx bench/webhook-sink.ts`; prints `{"port":N}` once listening.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SinkStats {
  readonly answered: number;
  readonly unique: number;
  readonly releasedAt: number;
  readonly lastAt: number;
}

let held: (() => void)[] | undefined;
let answered = 0;
let releasedAt = 0;
let lastAt = 0;
const seen = new Set<string>();

function control(path: string, res: ServerResponse): void {
  switch (path) {
    case '/control/hold':
      held ??= [];
      break;
    case '/control/release': {
      const waiting = held ?? [];
      held = undefined;
      releasedAt = performance.now();
      for (const go of waiting) go();
      break;
    }
    case '/control/reset':
      answered = 0;
      lastAt = 0;
      releasedAt = performance.now();
      seen.clear();
      break;
    case '/control/stats': {
      const stats: SinkStats = { answered, unique: seen.size, releasedAt, lastAt };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
  }
  res.writeHead(204).end();
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.url?.startsWith('/control/')) return control(req.url, res);
  const id = req.headers['webhook-id'] ?? req.headers['ce-id'];
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    const answer = () => {
      answered++;
      // The event id: from a header when the sender sets one, else from the structured body.
      seen.add(typeof id === 'string' ? id : (/"id":"([^"]+)"/.exec(body)?.[1] ?? String(answered)));
      lastAt = performance.now();
      res.writeHead(204).end();
    };
    if (held) held.push(answer);
    else answer();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

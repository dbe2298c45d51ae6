/**
 * The fan-out benchmark's baseline: a plain `ws` server in a process of its own, broadcasting at a
 * fixed rate the frame the gateway would send, to the same client processes. It speaks just
 * enough `graphql-transport-ws` for the same clients (acks `connection_init`, keeps each
 * `subscribe`'s id) and per event builds the payload once and each subscriber's `next` frame by
 * concatenation, as the gateway does, with `{ sent, n }` as the event's data: `sent` is the time
 * the event was due (epoch ms), so that a server that falls behind its schedule shows it in the
 * latency, as the gateway does when its `publishEvent` mutations wait.
 *
 * Run by `fanout.ts` through `fanout-protocol.ts`: `node --import tsx bench/fanout-bare-ws.ts`,
 * then commands `probe` (one frame with n = -1), `run` ({ rate, events }: resolves once the
 * last event went out), `status`.
 */
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { serveCommands } from './fanout-protocol.js';

export interface BareReady {
  readonly pid: number;
  readonly port: number;
}

export interface BareRun {
  readonly events: number;
  readonly cpuMs: number;
  /** The longest a broadcast took (ms): the last subscriber's frame left that long after `sent`. */
  readonly maxBroadcastMs: number;
}

const PROTOCOL = 'graphql-transport-ws';

/** The `payload` of a gateway `next` frame for `{ id type data cursor }`, with a cursor of the same length. */
function payload(n: number, sent: number): string {
  const cursor = Buffer.from(JSON.stringify({ l: `EVENTS@${new Date(sent).toISOString()}239654Z`, p: { '': 817276 + n } })).toString('base64url');
  return `{"data":{"events":{"id":"${randomUUID()}","type":"bench.tick","data":{"sent":${sent},"n":${n}},"cursor":"${cursor}"}}}`;
}

async function runBareServer(): Promise<void> {
  const subscribers = new Map<WebSocket, string>();
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; id?: string };
      if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
      else if (message.type === 'subscribe' && message.id) subscribers.set(socket, message.id);
    });
    socket.once('close', () => subscribers.delete(socket));
    socket.on('error', () => socket.terminate());
  });

  const broadcast = (n: number, sent: number): number => {
    const at = Date.now();
    const text = payload(n, sent);
    for (const [socket, id] of subscribers) socket.send(`{"id":"${id}","type":"next","payload":${text}}`);
    return Date.now() - at;
  };

  const { port } = wss.address() as { port: number };
  serveCommands({ pid: process.pid, port } satisfies BareReady, async (command) => {
    switch (command.cmd) {
      case 'status':
        return { subscribers: subscribers.size };
      case 'probe':
        broadcast(-1, Date.now());
        return null;
      case 'run': {
        const rate = Number(command['rate']);
        const events = Number(command['events']);
        const cpu = process.cpuUsage();
        const start = Date.now();
        let maxBroadcastMs = 0;
        for (let n = 0; n < events; n++) {
          const due = start + (n * 1000) / rate;
          if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
          maxBroadcastMs = Math.max(maxBroadcastMs, broadcast(n, Math.round(due)));
        }
        const used = process.cpuUsage(cpu);
        return { events, cpuMs: (used.user + used.system) / 1000, maxBroadcastMs } satisfies BareRun;
      }
      default:
        throw new Error(`unknown command ${command.cmd}`);
    }
  });
}

if (import.meta.url.endsWith(process.argv[1]?.split('/').pop() ?? '\0')) void runBareServer();

/**
 * One process of subscribers for the fan-out benchmark: `count` raw `ws` clients speaking
 * `graphql-transport-ws` (connection_init → connection_ack → subscribe), the same against the
 * gateway and against the bare `ws` server. Raw `ws` rather than graphql-ws's client, and frames
 * scanned for `"sent":` and `"n":` rather than parsed (`parse: 'json'` parses each one instead),
 * so that thousands of clients leave the machine's two cores to the servers they measure.
 *
 * Per receipt of event `n` (published at `sent`, epoch ms): latency = Date.now() − sent into a
 * 1 ms histogram, and per event the first and last latency and the number of receipts. Events with
 * n < 0 are probes: they only show that a socket is subscribed.
 *
 * Run by `fanout.ts` through `fanout-protocol.ts`: `node --import tsx bench/fanout-clients.ts
 * '{"localAddress":"127.0.0.2","parse":"scan"}'`, then commands `connect`, `status`, `measure`,
 * `receipts`, `report` (which ends the measurement), `disconnect` on stdin.
 */
import WebSocket from 'ws';
import { HISTOGRAM_MS, serveCommands, sparse, type SparseHistogram } from './fanout-protocol.js';

export interface ClientsSpec {
  /** Source address of this process's sockets: one per process, so that each has its own ephemeral ports. */
  readonly localAddress?: string;
  readonly parse: 'scan' | 'json';
}

export interface ConnectCommand {
  readonly cmd: 'connect';
  readonly url: string;
  readonly count: number;
  /** The `subscribe` message's payload. */
  readonly payload: { query: string; variables?: Record<string, unknown> };
  /** Handshakes in flight at once. */
  readonly concurrency: number;
}

export interface ClientsStatus {
  readonly open: number;
  /** Sockets that have received at least one `next` frame: subscribed for sure. */
  readonly withFrame: number;
  /** Sockets that closed while they were not asked to. */
  readonly closed: number;
  readonly closeCodes: Record<string, number>;
}

export interface ClientsReport extends ClientsStatus {
  /** Receipts of events n ≥ 0 since `measure`. */
  readonly receipts: number;
  readonly histogram: SparseHistogram;
  /** Per event n: receipts, and the smallest and largest latency (-1: none). */
  readonly perEvent: { count: number[]; first: number[]; last: number[] };
  readonly frames: number;
  readonly bytes: number;
  /** Frames that were not `next` frames of an event (errors, `complete`), and the first of them. */
  readonly others: number;
  readonly firstOther: string | null;
  /** CPU time of this process since `measure` (user + system). */
  readonly cpuMs: number;
  readonly elapsedMs: number;
}

const PROTOCOL = 'graphql-transport-ws';
const INIT = JSON.stringify({ type: 'connection_init' });
const SENT = Buffer.from('"sent":');
const N = Buffer.from('"n":');

/** The integer written at `from` (an optional `-`, then digits). */
function intAt(buffer: Buffer, from: number): number {
  let i = from;
  const negative = buffer[i] === 45;
  if (negative) i++;
  let value = 0;
  for (let c = buffer[i]; c !== undefined && c >= 48 && c <= 57; c = buffer[++i]) value = value * 10 + (c - 48);
  return negative ? -value : value;
}

function runClients(spec: ClientsSpec): void {
  const sockets: WebSocket[] = [];
  let disconnecting = false;
  let withFrame = 0;
  let closed = 0;
  const closeCodes: Record<string, number> = {};

  let recording = false;
  let histogram = new Uint32Array(HISTOGRAM_MS + 1);
  let receipts = 0;
  let events = 0;
  let count = new Uint32Array(0);
  let first = new Float64Array(0);
  let last = new Float64Array(0);
  let frames = 0;
  let bytes = 0;
  let others = 0;
  let firstOther: string | null = null;
  let cpuAtStart = process.cpuUsage();
  let startedAt = Date.now();

  const other = (text: string) => {
    others++;
    firstOther ??= text.slice(0, 500);
  };

  const onFrame = (data: Buffer, now: number) => {
    frames++;
    bytes += data.length;
    let sent: number;
    let n: number;
    if (spec.parse === 'json') {
      const message = JSON.parse(data.toString()) as { type: string; payload?: { data?: { events?: { data?: { sent: number; n: number } } } } };
      const body = message.payload?.data?.events?.data;
      if (message.type !== 'next' || !body) return other(data.toString());
      ({ sent, n } = body);
    } else {
      const at = data.indexOf(SENT);
      if (at < 0) return other(data.toString());
      sent = intAt(data, at + SENT.length);
      n = intAt(data, data.indexOf(N, at) + N.length);
    }
    if (!recording || n < 0) return;
    const latency = Math.max(0, now - sent);
    histogram[Math.min(latency, HISTOGRAM_MS)]!++;
    receipts++;
    if (n < events) {
      count[n]!++;
      if (latency < first[n]!) first[n] = latency;
      if (latency > last[n]!) last[n] = latency;
    }
  };

  /** Opens one socket and resolves once its `subscribe` went out. */
  const open = (url: string, subscribe: string) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(url, PROTOCOL, { perMessageDeflate: false, localAddress: spec.localAddress });
      sockets.push(socket);
      let acked = false;
      let gotFrame = false;
      socket.once('open', () => socket.send(INIT));
      socket.on('message', (data: Buffer) => {
        const now = Date.now();
        if (!acked) {
          const type = (JSON.parse(data.toString()) as { type?: string }).type;
          if (type !== 'connection_ack') return reject(new Error(`expected connection_ack, got ${data.toString().slice(0, 200)}`));
          acked = true;
          socket.send(subscribe);
          return resolve();
        }
        if (!gotFrame) {
          gotFrame = true;
          withFrame++;
        }
        onFrame(data, now);
      });
      socket.on('error', (error) => {
        if (!acked) reject(error);
      });
      socket.once('close', (code, reason) => {
        if (!acked) reject(new Error(`closed ${code} ${String(reason)} before connection_ack`));
        if (disconnecting) return;
        closed++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      });
    });

  const status = (): ClientsStatus => ({
    open: sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
    withFrame,
    closed,
    closeCodes,
  });

  serveCommands({ pid: process.pid }, async (command) => {
    switch (command.cmd) {
      case 'connect': {
        const { url, count: total, payload, concurrency } = command as unknown as ConnectCommand;
        disconnecting = false;
        withFrame = closed = 0;
        for (const code of Object.keys(closeCodes)) delete closeCodes[code];
        const subscribe = JSON.stringify({ id: '1', type: 'subscribe', payload });
        const at = Date.now();
        let next = 0;
        // A bounded number of handshakes at once: a burst of thousands overflows the listen backlog.
        await Promise.all(
          Array.from({ length: Math.min(concurrency, total) }, async () => {
            while (next < total) {
              next++;
              await open(url, subscribe);
            }
          }),
        );
        return { ms: Date.now() - at };
      }
      case 'status':
        return status();
      case 'measure':
        events = Number(command['events']);
        histogram = new Uint32Array(HISTOGRAM_MS + 1);
        count = new Uint32Array(events);
        first = new Float64Array(events).fill(Number.POSITIVE_INFINITY);
        last = new Float64Array(events).fill(-1);
        receipts = frames = bytes = others = 0;
        firstOther = null;
        cpuAtStart = process.cpuUsage();
        startedAt = Date.now();
        recording = true;
        return null;
      case 'receipts':
        return receipts;
      case 'report': {
        recording = false;
        const cpu = process.cpuUsage(cpuAtStart);
        return {
          ...status(),
          receipts,
          histogram: sparse(histogram),
          perEvent: {
            count: [...count],
            first: [...first].map((ms) => (Number.isFinite(ms) ? ms : -1)),
            last: [...last],
          },
          frames,
          bytes,
          others,
          firstOther,
          cpuMs: (cpu.user + cpu.system) / 1000,
          elapsedMs: Date.now() - startedAt,
        } satisfies ClientsReport;
      }
      case 'disconnect': {
        disconnecting = true;
        const all = sockets.splice(0);
        await Promise.all(
          all.map((socket) =>
            socket.readyState === WebSocket.CLOSED
              ? undefined
              : new Promise((resolve) => {
                  socket.once('close', resolve);
                  socket.terminate();
                }),
          ),
        );
        return null;
      }
      default:
        throw new Error(`unknown command ${command.cmd}`);
    }
  });
}

if (import.meta.url.endsWith(process.argv[1]?.split('/').pop() ?? '\0')) runClients(JSON.parse(process.argv[2] ?? '{}') as ClientsSpec);

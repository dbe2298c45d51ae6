/**
 * A closed-loop HTTP load generator for the benchmarks, run in a process of its own so that it
 * never shares an event loop with the gateway it measures. `connections` keep-alive sockets each
 * send the next request as soon as the previous answer arrived, for `durationMs`; or, with
 * `ratePerSec`, requests go out on a fixed schedule (open loop) to measure latency at a load.
 *
 * It speaks just enough HTTP/1.1 over `net` (requests built as bytes, answers framed by their
 * `content-length`), like wrk: on two cores the generator shares the machine with the gateway,
 * so the less CPU it burns the more the figures say about the gateway. Every answer is checked: a
 * non-200 status or a GraphQL `errors` entry counts as an error, so a broken gateway cannot look
 * fast.
 *
 * Run as a child: `node --import tsx bench/http-load.ts '<json LoadSpec>'`; prints one JSON
 * `LoadResult` line.
 */
import { connect, type Socket } from 'node:net';
import { runAsChild } from './report.js';

export interface LoadSpec {
  readonly url: string;
  readonly connections: number;
  readonly durationMs: number;
  /** Request bodies are made by this template: `{{n}}` becomes a request counter. */
  readonly bodyTemplate: string;
  readonly headers?: Record<string, string>;
  /** Open loop at this rate instead of closed loop. */
  readonly ratePerSec?: number;
  /** Also record, per answered request, `[sentAtEpochMs, answeredAtEpochMs, body]`. */
  readonly keepBodies?: boolean;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly bodies?: [number, number, string][];
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection that sends a request and resolves with its answer. */
class Connection {
  private readonly socket: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: ((answer: { status: number; body: string }) => void) | undefined;
  private failed: ((error: Error) => void) | undefined;
  readonly ready: Promise<void>;

  constructor(host: string, port: number) {
    this.socket = connect({ host, port, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    this.socket.on('error', (error) => this.failed?.(error));
    this.socket.on('close', () => this.failed?.(new Error('connection closed by the server')));
  }

  send(head: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
      this.socket.write(head + body);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private parse(): void {
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0 || !this.waiting) return;
    const head = this.buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const match = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!match) {
      this.failed?.(new Error(`answer without content-length: ${head.slice(0, 200)}`));
      return;
    }
    const total = end + 4 + Number(match[1]);
    if (this.buffer.length < total) return;
    const body = this.buffer.toString('utf8', end + 4, total);
    this.buffer = this.buffer.subarray(total);
    const resolve = this.waiting;
    this.waiting = undefined;
    this.failed = undefined;
    resolve({ status, body });
  }
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const target = new URL(spec.url);
  const extra = Object.entries(spec.headers ?? {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  const connections = await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      const connection = new Connection(target.hostname, Number(target.port));
      await connection.ready;
      return connection;
    }),
  );
  const idle = [...connections];
  const latencies: number[] = [];
  const bodies: [number, number, string][] = [];
  let errors = 0;
  let firstError: string | null = null;
  let counter = 0;

  const send = async (connection: Connection): Promise<void> => {
    const body = spec.bodyTemplate.replaceAll('{{n}}', String(counter++));
    const head =
      `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`;
    const sentAt = performance.now();
    const sentEpoch = Date.now();
    try {
      const answer = await connection.send(head, body);
      latencies.push(performance.now() - sentAt);
      if (answer.status !== 200 || answer.body.includes('"errors"')) {
        errors++;
        firstError ??= `${answer.status}: ${answer.body.slice(0, 300)}`;
      } else if (spec.keepBodies) {
        bodies.push([sentEpoch, Date.now(), answer.body]);
      }
    } catch (error) {
      errors++;
      firstError ??= (error as Error).message;
    }
  };

  const started = performance.now();
  const deadline = started + spec.durationMs;
  if (spec.ratePerSec) {
    // Open loop: a request is due every 1/rate s; it waits for a free connection if all are busy.
    const interval = 1000 / spec.ratePerSec;
    const inFlight = new Set<Promise<void>>();
    let next = started;
    while (performance.now() < deadline) {
      while (next <= performance.now() && idle.length > 0) {
        const connection = idle.pop()!;
        const p = send(connection).finally(() => {
          inFlight.delete(p);
          idle.push(connection);
        });
        inFlight.add(p);
        next += interval;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next - performance.now(), 2))));
    }
    await Promise.all(inFlight);
  } else {
    await Promise.all(
      connections.map(async (connection) => {
        while (performance.now() < deadline) await send(connection);
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  for (const connection of connections) connection.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    errors,
    firstError,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    ...(spec.keepBodies ? { bodies } : {}),
  };
}

runAsChild(import.meta.url, runLoad);

/**
 * The two servers the fan-out benchmark measures, behind one interface: the bare `ws` server
 * (`fanout-bare-ws.ts`, driven over its stdin) and a gateway process, whose events are
 * `publishEvent` mutations over HTTP sent on a fixed schedule (open loop).
 */
import type { GatewayProcess } from '../tests/helpers/gateway-process.js';
import type { BareReady, BareRun } from './fanout-bare-ws.js';
import { CommandChild } from './fanout-protocol.js';

const PUBLISH = 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { outboxId } }';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RunOutcome {
  readonly sent: number;
  readonly answerMs?: number[];
  /** Gateway only: event n's `sent` (epoch ms). */
  readonly sentAt?: number[];
}

/** What a fan-out target must do for `measure`: the server's pid, a probe, and a timed run. */
export interface Target {
  readonly name: string;
  readonly pid: number;
  readonly wsUrl: string;
  /** The topic subscribers subscribe to (the bare server sends whatever they subscribe to). */
  readonly topic: string;
  probe(): Promise<void>;
  /**
   * Sends `events` events at `rate` per second, each with the time it was due as its `sent`, and
   * resolves when the last one was due (and, for the gateway, went out); `outcome` then says how
   * many were sent (for the gateway: answered without errors), and for the gateway the time from
   * `sent` to each mutation's answer (ms).
   */
  run(rate: number, events: number): Promise<{ outcome: Promise<RunOutcome> }>;
}

/** The bare server in a process of its own; `stop` ends it gracefully (so that a profile is written). */
export async function bareTarget(nodeArgs: readonly string[] = []): Promise<{ target: Target; stop: () => Promise<void> }> {
  const server = await CommandChild.start<BareReady>('bench/fanout-bare-ws.ts', {}, nodeArgs);
  await sleep(1000);
  return {
    target: {
      name: 'bare ws',
      pid: server.ready.pid,
      wsUrl: `ws://127.0.0.1:${server.ready.port}/`,
      topic: 'bare',
      probe: () => server.request({ cmd: 'probe' }),
      run: async (rate, events) => {
        const done = server.request<BareRun>({ cmd: 'run', rate, events });
        // Resolves on the schedule, as the gateway's does: a server behind it has less of the grace period.
        await sleep(((events - 1) * 1000) / rate);
        return { outcome: done.then(({ events: sent }) => ({ sent })) };
      },
    },
    stop: () => server.end(),
  };
}

export async function publish(gateway: GatewayProcess, topic: string, data: unknown): Promise<void> {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: PUBLISH, variables: { i: { topic, type: 'bench.tick', data } } }),
  });
  const body = (await response.json()) as { errors?: unknown[] };
  if (!response.ok || body.errors) throw new Error(`publishEvent failed (${response.status}): ${JSON.stringify(body).slice(0, 500)}`);
}

export function gatewayTarget(gateway: GatewayProcess, topic: string): Target {
  return {
    name: 'gateway',
    pid: gateway.pid,
    wsUrl: gateway.url.replace(/^http/, 'ws'),
    topic,
    probe: () => publish(gateway, topic, { sent: Date.now(), n: -1 }),
    async run(rate, events) {
      // Open loop: each mutation leaves on its schedule, whether or not the previous one was answered.
      const start = Date.now();
      const answers: Promise<number | undefined>[] = [];
      const sentAt: number[] = [];
      for (let n = 0; n < events; n++) {
        const due = start + (n * 1000) / rate;
        if (due > Date.now()) await sleep(due - Date.now());
        const sent = Math.round(due);
        sentAt.push(sent);
        answers.push(
          publish(gateway, topic, { sent, n }).then(
            () => Date.now() - sent,
            (error: unknown) => void console.error(error),
          ),
        );
      }
      const outcome = Promise.all(answers).then((all) => {
        const answerMs = all.filter((ms) => ms !== undefined);
        return { sent: answerMs.length, answerMs, sentAt };
      });
      return { outcome };
    },
  };
}

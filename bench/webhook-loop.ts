/**
 * The consume benchmark's baseline: a plain client loop POSTing the same structured CloudEvent
 * bodies a durable consumer sends, to the same webhook, with the same number of requests in
 * flight, in a process of its own. `client` is `fetch` (what most code reaches for) or
 * `node:http` with a keep-alive agent (the cheapest way Node has).
 *
 * Run as a child: `node --import tsx bench/webhook-loop.ts '{"url":…,"events":N,"inFlight":K,"client":"fetch"}'`;
 * prints `{"perSecond":…}`.
 */
import { Agent, request } from 'node:http';
import { CLOUDEVENTS_CONTENT_TYPE, encodeEvent } from '../src/events/codec.js';
import { benchEvents } from './events.js';
import { runAsChild } from './report.js';

export interface LoopSpec {
  readonly url: string;
  readonly events: number;
  readonly inFlight: number;
  readonly client: 'fetch' | 'node:http';
}

export async function runLoop(spec: LoopSpec): Promise<{ perSecond: number }> {
  const bodies = benchEvents('bench-loop', spec.events).map((event) => ({ body: encodeEvent(event), id: event.id }));
  const url = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.inFlight });
  const post =
    spec.client === 'fetch'
      ? async (body: Buffer, id: string) => {
          const response = await fetch(spec.url, {
            method: 'POST',
            headers: { 'content-type': CLOUDEVENTS_CONTENT_TYPE, 'x-correlation-id': id },
            body: new Uint8Array(body),
          });
          await response.arrayBuffer();
          if (response.status >= 300) throw new Error(`webhook answered ${response.status}`);
        }
      : (body: Buffer, id: string) =>
          new Promise<void>((resolve, reject) => {
            const req = request(
              {
                agent,
                host: url.hostname,
                port: url.port,
                path: url.pathname,
                method: 'POST',
                headers: { 'content-type': CLOUDEVENTS_CONTENT_TYPE, 'content-length': body.byteLength, 'x-correlation-id': id },
              },
              (res) => {
                res.resume();
                res.on('end', () => (res.statusCode! < 300 ? resolve() : reject(new Error(`webhook answered ${res.statusCode}`))));
              },
            );
            req.on('error', reject);
            req.end(body);
          });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: spec.inFlight }, async () => {
      while (next < bodies.length) {
        const item = bodies[next++]!;
        await post(item.body, item.id);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { perSecond: bodies.length / seconds };
}

runAsChild(import.meta.url, runLoop);

/**
 * A Prometheus stand-in for the fan-out benchmark's metrics comparison: `GET /metrics` on the
 * gateway every `everyMs` (the first at once), each answer read to the end, for as long as it runs.
 * A new connection per scrape: a kept-alive one races Node's 5 s `keepAliveTimeout` at a 5 s
 * interval (ECONNRESET).
 */
import { get } from 'node:http';
import { percentile } from './report.js';

export interface ScrapeSummary {
  readonly scrapes: number;
  readonly failures: number;
  /** Request → last byte of the answer, p50 / max (ms). */
  readonly p50Ms: number;
  readonly maxMs: number;
  readonly bytes: number;
}

/** Starts scraping `gatewayUrl`'s `/metrics`; `stop` waits for a scrape in flight and sums up. */
export function startScraping(gatewayUrl: string, everyMs: number): { stop: () => Promise<ScrapeSummary> } {
  const url = new URL('/metrics', gatewayUrl).href;
  const durations: number[] = [];
  let failures = 0;
  let bytes = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const scrape = () => {
    const at = Date.now();
    inFlight = new Promise<string>((resolve, reject) => {
      get(url, { agent: false }, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.once('end', () =>
          response.statusCode === 200 ? resolve(text) : reject(new Error(`/metrics answered ${response.statusCode}: ${text.slice(0, 200)}`)),
        );
        response.once('error', reject);
      }).once('error', reject);
    })
      .then((text) => {
        durations.push(Date.now() - at);
        bytes = text.length;
      })
      .catch((error: unknown) => {
        failures++;
        console.error(error);
      });
  };
  scrape();
  const timer = setInterval(scrape, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      return {
        scrapes: durations.length,
        failures,
        p50Ms: percentile(durations, 0.5),
        maxMs: Math.max(...durations),
        bytes,
      };
    },
  };
}

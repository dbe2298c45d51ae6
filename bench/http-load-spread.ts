/**
 * [http-load.ts](http-load.ts) spread over several gateways, as a load balancer would: connection
 * i goes to `urls[i % urls.length]` (round robin), all from one process, closed loop. One URL is
 * the single-instance baseline measured the same way. `{{n}}` in the body becomes `1<n><i>` (i:
 * the URL's index), so requests to different gateways never share a key and stay valid JSON
 * numbers. Latencies are merged over all connections, to the millisecond. Also reports the CPU
 * time this generator used during the run, so a benchmark can tell where the machine's cores went.
 *
 * Run as a child: `node --import tsx bench/http-load-spread.ts '<json SpreadSpec>'`.
 */
import { runLoad, type LoadResult, type LoadSpec } from './http-load.js';
import { runAsChild } from './report.js';

export interface SpreadSpec extends Omit<LoadSpec, 'url' | 'ratePerSec' | 'keepBodies'> {
  readonly urls: readonly string[];
}

export interface SpreadResult extends Omit<LoadResult, 'bodies'> {
  /** Answered requests per second, per URL. */
  readonly perUrl: number[];
  /** CPU time (user + system) of this process during the run. */
  readonly cpuMs: number;
}

export async function runSpread(spec: SpreadSpec): Promise<SpreadResult> {
  const n = spec.urls.length;
  if (spec.connections < n) throw new Error(`${spec.connections} connections cannot spread over ${n} gateways`);
  const cpu = process.cpuUsage();
  const results = await Promise.all(
    spec.urls.map((url, i) =>
      runLoad({
        ...spec,
        url,
        connections: Math.floor(spec.connections / n) + (i < spec.connections % n ? 1 : 0),
        bodyTemplate: spec.bodyTemplate.replaceAll('{{n}}', `1{{n}}${i}`),
        keepBodies: true,
      }),
    ),
  );
  const used = process.cpuUsage(cpu);
  const latencies = results.flatMap((r) => (r.bodies ?? []).map(([sent, answered]) => answered - sent)).sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const failed = results.find((r) => r.firstError !== null);
  return {
    requests: results.reduce((sum, r) => sum + r.requests, 0),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    firstError: failed?.firstError ?? null,
    seconds: Math.max(...results.map((r) => r.seconds)),
    perSecond: results.reduce((sum, r) => sum + r.perSecond, 0),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    perUrl: results.map((r) => r.perSecond),
    cpuMs: (used.user + used.system) / 1000,
  };
}

runAsChild(import.meta.url, runSpread);

/**
 * `npm run bench:profile -- <file.cpuprofile> [top]`: where a CPU profile written by a benchmark
 * (`BENCH_CPU_PROF=<dir>`, `node --cpu-prof`) spent its time: the share of sampled time spent in
 * each package (`node_modules/<package>`) or file of the gateway (self time, the code itself, not
 * what it called), then the functions that took most. What `bench/RESULTS.md` quotes of a profile
 * comes from here.
 */
import { readFileSync } from 'node:fs';
import { printTable } from './report.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The package or gateway file a frame belongs to; V8's own entries (GC, idle, native) by name. */
function placeOf({ url, functionName }: ProfileNode['callFrame']): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url) return url.replace(/^.*\/(dist|src)\//, '$1/');
  return `(${functionName || 'native'})`;
}

function top(totals: Map<string, number>, all: number, n: number): string[][] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => [name, `${((100 * us) / all).toFixed(1)} %`]);
}

const [file, n = '25'] = process.argv.slice(2);
if (!file) throw new Error('usage: npm run bench:profile -- <file.cpuprofile> [top]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const byPlace = new Map<string, number>();
const byFunction = new Map<string, number>();
let all = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const frame = byId.get(id)!.callFrame;
  const place = placeOf(frame);
  const fn = `${frame.functionName || '(anonymous)'} (${place}:${frame.lineNumber + 1})`;
  byPlace.set(place, (byPlace.get(place) ?? 0) + us);
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  all += us;
});
console.log(`${file}: ${(all / 1e6).toFixed(1)} s sampled\n`);
printTable(['package or file', 'self time'], ['l', 'r'], top(byPlace, all, Number(n)));
console.log('');
printTable(['function', 'self time'], ['l', 'r'], top(byFunction, all, Number(n)));

/**
 * What the fan-out benchmark's processes share: a request/answer line protocol between the
 * orchestrator (`fanout.ts`) and its long-lived children (`fanout-clients.ts`,
 * `fanout-bare-ws.ts`), and the latency histogram the clients fill.
 *
 * A child prints one JSON line when it is ready, then answers each JSON command line on its stdin
 * with one JSON line, in order. Its stdout carries nothing else (diagnostics go to stderr).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export type Command = { readonly cmd: string } & Record<string, unknown>;
type Answer = { ok: true; result: unknown } | { ok: false; error: string };

/** Child side: prints `ready`, then answers every command with what `handle` resolves to. */
export function serveCommands(ready: unknown, handle: (command: Command) => Promise<unknown> | unknown): void {
  const write = (answer: Answer | unknown) => process.stdout.write(`${JSON.stringify(answer)}\n`);
  write(ready);
  let chain = Promise.resolve();
  createInterface({ input: process.stdin }).on('line', (line) => {
    // One command at a time: answers leave in the order the commands came.
    chain = chain.then(async () => {
      try {
        const command = JSON.parse(line) as Command;
        write({ ok: true, result: await handle(command) } satisfies Answer);
      } catch (error) {
        write({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Answer);
      }
    });
  });
  // The orchestrator closed our stdin (`end()`) or went away: so does the child.
  process.stdin.once('end', () => process.exit(0));
}

/** Orchestrator side: a child bench process spoken to one command at a time. */
export class CommandChild<Ready> {
  private readonly waiting: { resolve: (value: unknown) => void; reject: (error: Error) => void }[] = [];
  private exitedWith: string | undefined;

  private constructor(
    readonly process: ChildProcess,
    readonly ready: Ready,
  ) {}

  static start<Ready>(script: string, arg: unknown, nodeArgs: readonly string[] = []): Promise<CommandChild<Ready>> {
    const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, JSON.stringify(arg)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    return new Promise((resolve, reject) => {
      let child: CommandChild<Ready> | undefined;
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        const parsed = JSON.parse(line) as unknown;
        if (!child) {
          child = new CommandChild(proc, parsed as Ready);
          resolve(child);
          return;
        }
        const answer = parsed as Answer;
        const next = child.waiting.shift();
        if (!next) return;
        if (answer.ok) next.resolve(answer.result);
        else next.reject(new Error(`${script}: ${answer.error}`));
      });
      proc.once('exit', (code, signal) => {
        const why = `${script} exited (${code ?? signal})`;
        if (!child) return reject(new Error(`${why} before it was ready`));
        child.exitedWith = why;
        for (const waiter of child.waiting.splice(0)) waiter.reject(new Error(why));
      });
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  request<R>(command: Command): Promise<R> {
    if (this.exitedWith) return Promise.reject(new Error(this.exitedWith));
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ resolve: resolve as (value: unknown) => void, reject });
      this.process.stdin!.write(`${JSON.stringify(command)}\n`);
    });
  }

  /** Closes its stdin, which makes it exit; SIGKILLs it if it has not within `timeoutMs`. */
  async end(timeoutMs = 5000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.stdin!.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  /** SIGKILL unless it already exited; safe to call more than once. */
  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

/** Latencies in whole milliseconds (Date.now() on both ends), the last bucket holding everything above. */
export const HISTOGRAM_MS = 60_000;

/** A histogram as `[ms, count]` pairs of its non-empty buckets. */
export type SparseHistogram = [number, number][];

export function sparse(buckets: Uint32Array): SparseHistogram {
  const out: SparseHistogram = [];
  for (let ms = 0; ms < buckets.length; ms++) if (buckets[ms]! > 0) out.push([ms, buckets[ms]!]);
  return out;
}

/** Adds sparse histograms up into one. */
export function merge(histograms: readonly SparseHistogram[]): Map<number, number> {
  const merged = new Map<number, number>();
  for (const histogram of histograms) for (const [ms, count] of histogram) merged.set(ms, (merged.get(ms) ?? 0) + count);
  return merged;
}

/** The q-quantile as `report.ts`'s `percentile` defines it (sorted[floor(q·n)]), read off a histogram. */
export function histogramPercentile(histogram: Map<number, number>, q: number): number {
  let total = 0;
  for (const count of histogram.values()) total += count;
  if (total === 0) return Number.NaN;
  const index = Math.min(total - 1, Math.floor(q * total));
  let seen = 0;
  for (const ms of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(ms)!;
    if (seen > index) return ms;
  }
  return Number.NaN;
}

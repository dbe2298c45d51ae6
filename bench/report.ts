import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The machine a benchmark ran on, for the first lines of its output. */
export function machine(): string {
  return `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const percentile = (xs: readonly number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? Number.NaN;
export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Prints a markdown table (the shape `bench/RESULTS.md` keeps). */
export function printTable(header: readonly string[], align: readonly ('l' | 'r')[], rows: readonly string[][]): void {
  console.log(`\n| ${header.join(' | ')} |`);
  console.log(`|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

/** Runs a benchmark's main function and exits with its outcome (open handles never keep it alive). */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/**
 * For a bench script that also runs as a child process: when `moduleUrl` is the script node was
 * started with, runs `main` on the JSON argument and prints its result as one JSON line.
 */
export function runAsChild<A, R>(moduleUrl: string, main: (arg: A) => Promise<R>): void {
  const script = process.argv[1];
  if (!script || !moduleUrl.endsWith(script.split('/').pop()!)) return;
  main(JSON.parse(process.argv[2] ?? 'null') as A).then(
    // Exit only once the (possibly large) result is flushed to the pipe.
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/**
 * Compiles `src` to `dist` (`npm run build`), for benchmarks that run the gateway as `npm start`
 * does (`GatewayOptions.entry = 'built'`) rather than through tsx.
 */
export function buildGateway(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: 'inherit' });
}

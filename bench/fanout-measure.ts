/**
 * One measurement of the fan-out benchmark against one server (`Target`), with the client
 * processes already started: RSS before, N subscribers connected and probed until each received
 * a frame, RSS after BENCH_SETTLE_MS idle; then BENCH_SECONDS of events at a fixed rate, counted
 * BENCH_GRACE_MS after the last one (delivered in the window), then up to BENCH_DRAIN_MS more
 * for late receipts (latencies count them all).
 */
import { cpus } from 'node:os';
import type { ClientsReport, ClientsStatus, ConnectCommand } from './fanout-clients.js';
import { cpuMs, machineBusyMs, rssKb, runQueueMs } from './fanout-proc.js';
import { histogramPercentile, merge, type CommandChild } from './fanout-protocol.js';
import type { Target } from './fanout-targets.js';
import { fmt, percentile } from './report.js';

export const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 20);
export const GRACE_MS = Number(process.env['BENCH_GRACE_MS'] ?? 2000);
const DRAIN_MS = Number(process.env['BENCH_DRAIN_MS'] ?? 15_000);
const SETTLE_MS = Number(process.env['BENCH_SETTLE_MS'] ?? 3000);
const CONCURRENCY = Number(process.env['BENCH_CONNECT_CONCURRENCY'] ?? 64);
const QUERY = 'subscription($t: String!) { events(topic: $t) { id type data cursor } }';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What one measurement against one server found. */
export interface Figures {
  p50: number;
  p99: number;
  /** Per event, its first receipt's latency and its last one's: p50 / p99 over the events. */
  first: [number, number];
  last: [number, number];
  /** Receipts by BENCH_GRACE_MS after the last event was sent, and by the end, ÷ (events × N). */
  delivered: number;
  eventually: number;
  kbPerSubscription: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  serverCpu: number;
  clientCpu: number;
  /** Cores the whole machine kept busy during the run (other sessions' processes included). */
  machineCpu: number;
  /** The server's CPU time during the run ÷ the frames received in it (µs), and the kernel's share of it. */
  cpuPerFrameUs: number;
  systemShare: number;
  /** Share of the run the server's event loop was ready to run but waited for a CPU. */
  serverWaited: number;
  connectMs: number;
  frameBytes: number;
  closed: number;
  closeCodes: Record<string, number>;
  firstOther: string | null;
  /** Gateway only: from `sent` to the `publishEvent` answer, p50 / p99. */
  answer?: [number, number];
  /** Per event n: the latency of its first and last receipt (NaN: none), and its `sent` when known. */
  perEvent: { first: number[]; last: number[]; sentAt?: number[] };
}

export async function measure(target: Target, clients: CommandChild<unknown>[], counts: number[], rate: number): Promise<Figures> {
  const n = counts.reduce((a, b) => a + b, 0);
  const events = Math.round(rate * SECONDS);
  const rssBefore = rssKb(target.pid);
  const connectAt = Date.now();
  const payload = { query: QUERY, variables: { t: target.topic } };
  await Promise.all(
    clients.map((client, i) =>
      client.request({ cmd: 'connect', url: target.wsUrl, count: counts[i]!, payload, concurrency: CONCURRENCY } satisfies ConnectCommand),
    ),
  );
  const connectMs = Date.now() - connectAt;
  // Subscribed for sure once each socket received a frame: probe until all have.
  const deadline = Date.now() + 180_000;
  for (;;) {
    await target.probe();
    await sleep(500);
    const statuses = await Promise.all(clients.map((c) => c.request<ClientsStatus>({ cmd: 'status' })));
    const ready = statuses.reduce((sum, s) => sum + s.withFrame, 0);
    if (ready === n) break;
    if (Date.now() > deadline) throw new Error(`${target.name}: only ${ready} of ${n} subscribers received a probe in 3 minutes`);
  }
  await sleep(SETTLE_MS);
  const rssAfter = rssKb(target.pid);

  await Promise.all(clients.map((c) => c.request({ cmd: 'measure', events })));
  const cpuAt = cpuMs(target.pid);
  const busyAt = machineBusyMs();
  const waitedAt = runQueueMs(target.pid);
  const runAt = Date.now();
  const { outcome } = await target.run(rate, events);
  await sleep(GRACE_MS);
  const cpuNow = cpuMs(target.pid);
  const serverSystemMs = cpuNow.system - cpuAt.system;
  const serverCpuMs = cpuNow.user - cpuAt.user + serverSystemMs;
  const serverCpu = serverCpuMs / (Date.now() - runAt);
  const machineCpu = (machineBusyMs() - busyAt) / (Date.now() - runAt);
  const serverWaited = (runQueueMs(target.pid) - waitedAt) / (Date.now() - runAt);
  const receipts = () => Promise.all(clients.map((c) => c.request<number>({ cmd: 'receipts' }))).then((xs) => xs.reduce((a, b) => a + b, 0));
  const inWindow = await receipts();
  const { sent, answerMs, sentAt } = await outcome;
  // Latencies count every receipt, late ones too: wait (at most BENCH_DRAIN_MS) for the stragglers.
  const drainUntil = Date.now() + DRAIN_MS;
  while ((await receipts()) < sent * n && Date.now() < drainUntil) await sleep(250);
  const reports = await Promise.all(clients.map((c) => c.request<ClientsReport>({ cmd: 'report' })));
  await Promise.all(clients.map((c) => c.request({ cmd: 'disconnect' })));

  const histogram = merge(reports.map((r) => r.histogram));
  const received = reports.reduce((sum, r) => sum + r.receipts, 0);
  const perEvent = { first: [] as number[], last: [] as number[], ...(sentAt ? { sentAt } : {}) };
  for (let e = 0; e < events; e++) {
    const got = reports.map((r) => ({ first: r.perEvent.first[e]!, last: r.perEvent.last[e]! })).filter((x) => x.first >= 0);
    perEvent.first.push(got.length ? Math.min(...got.map((x) => x.first)) : Number.NaN);
    perEvent.last.push(got.length ? Math.max(...got.map((x) => x.last)) : Number.NaN);
  }
  const firsts = perEvent.first.filter((ms) => !Number.isNaN(ms));
  const lasts = perEvent.last.filter((ms) => !Number.isNaN(ms));
  const frames = reports.reduce((sum, r) => sum + r.frames, 0);
  const closeCodes: Record<string, number> = {};
  for (const r of reports) for (const [code, k] of Object.entries(r.closeCodes)) closeCodes[code] = (closeCodes[code] ?? 0) + k;
  return {
    p50: histogramPercentile(histogram, 0.5),
    p99: histogramPercentile(histogram, 0.99),
    first: [percentile(firsts, 0.5), percentile(firsts, 0.99)],
    last: [percentile(lasts, 0.5), percentile(lasts, 0.99)],
    delivered: inWindow / (sent * n),
    eventually: received / (sent * n),
    kbPerSubscription: (rssAfter - rssBefore) / n,
    rssBeforeMb: rssBefore / 1024,
    rssAfterMb: rssAfter / 1024,
    serverCpu,
    clientCpu: reports.reduce((sum, r) => sum + r.cpuMs / r.elapsedMs, 0),
    machineCpu,
    serverWaited,
    cpuPerFrameUs: (serverCpuMs * 1000) / inWindow,
    systemShare: serverSystemMs / serverCpuMs,
    connectMs,
    frameBytes: frames ? reports.reduce((sum, r) => sum + r.bytes, 0) / frames : Number.NaN,
    closed: reports.reduce((sum, r) => sum + r.closed, 0),
    closeCodes,
    firstOther: reports.find((r) => r.firstOther)?.firstOther ?? null,
    perEvent,
    ...(answerMs ? { answer: [percentile(answerMs, 0.5), percentile(answerMs, 0.99)] as [number, number] } : {}),
  };
}

/** One line of figures for the log. */
export function describe(name: string, f: Figures): string {
  const closed = f.closed ? `; ${f.closed} sockets closed ${JSON.stringify(f.closeCodes)}` : '';
  const other = f.firstOther ? `; other frames, first: ${f.firstOther}` : '';
  return (
    `  ${name}: p50 ${f.p50} / p99 ${f.p99} ms; per event, first receipt p50 ${f.first[0]} / p99 ${f.first[1]} ms, ` +
    `last ${f.last[0]} / ${f.last[1]} ms; delivered ${f.delivered.toFixed(4)} in the window, ${f.eventually.toFixed(4)} in all; RSS ${f.rssBeforeMb.toFixed(1)} → ${f.rssAfterMb.toFixed(1)} MiB ` +
    `(${f.kbPerSubscription.toFixed(1)} KB/sub); CPU server ${(f.serverCpu * 100).toFixed(0)} % ` +
    `(${f.cpuPerFrameUs.toFixed(1)} µs per frame, ${(f.systemShare * 100).toFixed(0)} % in the kernel; waited for a CPU ${(f.serverWaited * 100).toFixed(0)} % of the time), ` +
    `clients ${(f.clientCpu * 100).toFixed(0)} %, machine ${(f.machineCpu * 100).toFixed(0)} % of ${cpus().length * 100} %; ` +
    `connect ${fmt(f.connectMs)} ms; ${Math.round(f.frameBytes)} B/frame` +
    (f.answer ? `; publishEvent answered p50 ${f.answer[0]} / p99 ${f.answer[1]} ms` : '') +
    `${closed}${other}`
  );
}

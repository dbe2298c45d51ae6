/**
 * `npm run bench:heap [-- N]`: the JS heap an idle `events` subscription holds in a gateway, from
 * two heap snapshots of one gateway process (memory broker; `--heapsnapshot-signal`): one with a
 * single WebSocket subscriber, one after N (2,000) more joined the same operation. Prints the
 * reachable heap per added subscription (the snapshots count reachable objects only), and the
 * kinds of object that grew most, for the gateway built (`dist/main.js`, as `npm start` runs it)
 * and run through tsx (`src/main.ts`). Unlike the RSS figure of `bench:fanout`, it does not depend
 * on when V8 grows its heap. A benchmark, not a test: it prints figures and asserts nothing.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { GatewayScope } from '../tests/helpers/gateway-process.js';
import { buildGateway, fmt, machine, printTable, runBenchmark } from './report.js';

const N = Number(process.argv[2] ?? 2000);
const QUERY = 'subscription { events(topic: "heap") { id type data cursor } }';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per kind of object (type, and name for objects and closures). */
function kinds(path: string): Map<string, { count: number; bytes: number }> {
  const heap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = heap.snapshot.meta.node_fields;
  const [type, name, size] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const types = heap.snapshot.meta.node_types[0];
  const byKind = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < heap.nodes.length; i += fields.length) {
    const t = types[heap.nodes[i + type]!]!;
    const key = t === 'object' || t === 'closure' ? `${t} ${heap.strings[heap.nodes[i + name]!] || '(anonymous)'}` : t;
    const entry = byKind.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += heap.nodes[i + size]!;
    byKind.set(key, entry);
  }
  return byKind;
}

function subscriber(url: string, i: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // One source address per 250 sockets, so that ephemeral ports do not run out.
    const socket = new WebSocket(url, 'graphql-transport-ws', { localAddress: `127.0.0.${2 + Math.floor(i / 250)}` });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string };
      if (message.type !== 'connection_ack') return;
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY } }));
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

async function measure(entry: 'built' | 'source'): Promise<string[][]> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-heap-'));
  const scope = new GatewayScope();
  const sockets: WebSocket[] = [];
  try {
    const gateway = await scope.start({
      entry,
      broker: 'memory',
      databasePath: scope.database(),
      nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
    });
    const snapshot = async (): Promise<string> => {
      const before = readdirSync(dir).length;
      process.kill(gateway.pid, 'SIGUSR2');
      while (readdirSync(dir).length === before) await sleep(200);
      const file = join(dir, readdirSync(dir).sort().at(-1)!);
      // Written when its size stops changing.
      for (let last = -1; ; ) {
        await sleep(1500);
        const size = statSync(file).size;
        if (size > 0 && size === last) return file;
        last = size;
      }
    };
    const url = gateway.url.replace('http', 'ws');
    sockets.push(await subscriber(url, 0));
    await sleep(2000);
    const one = kinds(await snapshot());
    for (let i = 1; i <= N; i++) sockets.push(await subscriber(url, i));
    await sleep(3000);
    const many = kinds(await snapshot());
    const growth = [...many].map(([key, { count, bytes }]) => ({ key, count: count - (one.get(key)?.count ?? 0), bytes: bytes - (one.get(key)?.bytes ?? 0) }));
    const total = growth.reduce((sum, g) => sum + g.bytes, 0);
    console.log(`${entry}: ${fmt(total / N)} B of heap per idle subscription (${N} subscriptions)`);
    return growth
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 12)
      .map((g) => [entry, g.key, (g.count / N).toFixed(2), fmt(g.bytes / N)]);
  } finally {
    for (const socket of sockets) socket.terminate();
    await scope.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(async () => {
  console.log(`heap per idle subscription, ${fmt(N)} subscribers of one operation, memory broker\n${machine()}\n`);
  buildGateway();
  const rows = [...(await measure('built')), ...(await measure('source'))];
  printTable(['gateway', 'kind of object', 'per subscription', 'bytes per subscription'], ['l', 'l', 'r', 'r'], rows);
});

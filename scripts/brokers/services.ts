/**
 * RabbitMQ, NATS JetStream and PostgreSQL come with the machine: the harness reuses whatever
 * listens on their ports, starts them with the machine's own commands only when nothing does,
 * and asks each with its real client whether it works.
 */
import { connect as amqpConnect } from 'amqplib';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import postgres from 'postgres';
import { HarnessError, type Log } from './log.js';
import { portOpen, run, until } from './processes.js';
import { endpoint, type HarnessSettings } from './settings.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

export interface Service {
  readonly name: 'rabbitmq' | 'nats' | 'postgres';
  readonly host: string;
  readonly port: number;
  /** Where the machine's service listens; only there does `start` help. */
  readonly defaultPort: number;
  /** Resolves with undefined when the service works, else with what is wrong. Never rejects. */
  problem(): Promise<string | undefined>;
  /** Starts the machine's service; resolves once its port is open. */
  start(log: Log): Promise<void>;
}

export function services(settings: HarnessSettings): Service[] {
  return [rabbitmq(settings.rabbitmqUrl), nats(settings.natsUrl), postgresServer(settings.postgresUrl)];
}

/** Runs `rabbitmqctl` without blocking the event loop (a test's clients must keep noticing the broker meanwhile). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 120_000 });
  return stdout;
}

function rabbitmq(url: string): Service {
  return {
    name: 'rabbitmq',
    ...endpoint(url, 5672),
    defaultPort: 5672,
    problem: () =>
      failure(async () => {
        const connection = await amqpConnect(url, { timeout: 2000 });
        await connection.close();
      }),
    async start(log) {
      log('rabbitmq: starting it (rabbitmq-server -detached)');
      await run('rabbitmq-server', ['-detached']);
      // await_startup waits for the node to boot fully (plugins and listeners), which the open
      // port alone does not prove; the port poll is the fallback when rabbitmqctl cannot reach
      // the node (e.g. cookie trouble).
      await rabbitmqctl('await_startup', '--timeout', '110').catch(() => undefined);
      await expectPort(this, 60_000);
    },
  };
}

/** The command line the machine's nats-server runs with (JetStream on, its store and log where the package puts them). */
export function sharedNatsServerArgs(host: string, port: number): string[] {
  return ['-a', host, '-p', String(port), '-js', '-sd', '/var/lib/nats-server', '-l', '/var/log/nats-server.log'];
}

/** Starts the machine's nats-server unless one runs already (`--oknodo`: then this does nothing). */
export async function startSharedNatsServer(host: string, port: number): Promise<void> {
  await run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', NATS_SERVER, '--', ...sharedNatsServerArgs(host, port)]);
}

/** Undefined when the NATS server at `url` serves JetStream API requests, else what is wrong. */
export function natsProblem(url: string): Promise<string | undefined> {
  return failure(async () => {
    const nc = await natsConnect({ servers: url, timeout: 2000, reconnect: false });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
    } finally {
      await nc.close();
    }
  });
}

function nats(url: string): Service {
  return {
    name: 'nats',
    ...endpoint(url, 4222),
    defaultPort: 4222,
    problem: () => natsProblem(url),
    async start(log) {
      log(`nats: starting ${NATS_SERVER} with JetStream`);
      await startSharedNatsServer(this.host, this.port);
      await expectPort(this, 30_000, ' (see /var/log/nats-server.log)');
    },
  };
}

function postgresServer(url: string): Service {
  return {
    name: 'postgres',
    ...endpoint(url, 5432),
    defaultPort: 5432,
    problem: () =>
      failure(async () => {
        const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => undefined });
        try {
          await sql`select 1`;
        } finally {
          await sql.end({ timeout: 1 });
        }
      }),
    async start(log) {
      log("postgres: starting the machine's clusters (pg_ctlcluster)");
      const { stdout } = await run('pg_lsclusters', ['--no-header']);
      for (const [version, cluster] of stdout.split('\n').map((line) => line.trim().split(/\s+/))) {
        if (version && cluster) await run('pg_ctlcluster', [version, cluster, 'start']).catch(() => undefined);
      }
      await expectPort(this, 60_000);
    },
  };
}

/** Reuses what listens on the service's port; starts the machine's service when nothing does and the address is the machine's. */
export async function ensureService(service: Service, log: Log): Promise<void> {
  const address = `${service.host}:${service.port}`;
  if (await portOpen(service.host, service.port)) {
    log(`${service.name}: reusing what listens on ${address}`);
    return;
  }
  if (service.host !== '127.0.0.1' || service.port !== service.defaultPort) {
    throw new HarnessError(`${service.name}: nothing listens on ${address}, and the harness starts only the machine's own on 127.0.0.1:${service.defaultPort}`);
  }
  log(`${service.name}: not listening on ${address}`);
  try {
    await service.start(log);
  } catch (error) {
    if (error instanceof HarnessError) throw error;
    throw new HarnessError(`${service.name}: nothing on ${address}, and starting it failed: ${String(error)}`, { cause: error });
  }
  log(`${service.name}: started, listening on ${address}`);
}

async function expectPort(service: Service, timeoutMs: number, hint = ''): Promise<void> {
  if (!(await until(() => portOpen(service.host, service.port), timeoutMs, 500))) {
    throw new HarnessError(`${service.name}: still not listening on ${service.host}:${service.port} after start${hint}`);
  }
}

async function failure(attempt: () => Promise<void>): Promise<string | undefined> {
  try {
    await attempt();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || error.name : String(error);
  }
}

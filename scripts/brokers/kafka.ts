/**
 * The local Kafka's life: start (adopting one that already runs), stop, reset, status. A broker
 * this harness started is known by the pid file; whatever else listens on the port is reused and
 * never stopped. Every change takes the cache folder's lock, so parallel test runs and
 * `npm run brokers` never start two brokers or stop one another's start.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { kafkaAnswers, kafkaNotReady } from './kafka-probe.js';
import { prepareKafkaStorage, resolveKafka } from './kafka-install.js';
import { HarnessError, type Log } from './log.js';
import { commandLine, holdLock, portOpen, processAlive, sleep, until } from './processes.js';
import { KAFKA_ASSETS, REPO_ROOT, type HarnessSettings, type KafkaSettings } from './settings.js';

/** The pid of the broker this harness started, while it lives; its command line is checked so a recycled pid is never taken for it. */
export function kafkaPid(kafka: KafkaSettings): number | undefined {
  const pid = Number(existsSync(kafka.pidFile) ? readFileSync(kafka.pidFile, 'utf8').trim() : NaN);
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return undefined;
  return commandLine(pid)?.includes('kafka.Kafka') ? pid : undefined;
}

/** The Kafka version a broker of ours runs, read from its classpath. */
const pidVersion = (pid: number) =>
  commandLine(pid)
    ?.map((arg) => /\/kafka-([^/]+)\/libs\/\*$/.exec(arg)?.[1])
    .find(Boolean) ?? '?';

/** Runs `change` holding the lock; the cache folder must be outside the git clone (it is big, and CI clones afresh). */
export async function withKafkaLock<T>(settings: HarnessSettings, change: () => Promise<T>): Promise<T> {
  mkdirSync(settings.cacheDir, { recursive: true });
  if (`${realpathSync(settings.cacheDir)}${sep}`.startsWith(`${realpathSync(REPO_ROOT)}${sep}`)) {
    throw new HarnessError(`EVENT_GATEWAY_CACHE (${settings.cacheDir}) must be outside the git clone`);
  }
  const release = await holdLock(settings.kafka.lockFile, 300_000);
  try {
    return await change();
  } finally {
    await release();
  }
}

/** Brings Kafka up unless something already serves on its port; resolves once clients can work with it. Call under `withKafkaLock`. */
export async function startKafka(kafka: KafkaSettings, log: Log): Promise<void> {
  const started = Date.now();
  const address = `${kafka.host}:${kafka.port}`;
  let pid = kafkaPid(kafka);
  if (await portOpen(kafka.host, kafka.port)) {
    if (pid) {
      log(`kafka: reusing Kafka ${pidVersion(pid)} started by this harness (pid ${pid}) on ${address}`);
      await waitReady(kafka, pid); // milliseconds when it is ready, as it normally is
    } else {
      log(`kafka: reusing what listens on ${address} (not started by this harness)`);
      if (!(await kafkaAnswers(kafka.host, kafka.port))) log(`kafka: WARNING: ${address} does not answer Kafka requests (yet?)`);
    }
    return;
  }
  if (pid) {
    log(`kafka: pid ${pid} is still starting, waiting for it`); // its starter died before it was ready
  } else {
    rmSync(kafka.pidFile, { force: true });
    if (kafka.host !== '127.0.0.1') throw new HarnessError(`kafka: nothing answers on ${address}, and the harness starts Kafka only on 127.0.0.1`);
    if (await portOpen(kafka.host, kafka.controllerPort)) {
      throw new HarnessError(`kafka: ${kafka.host}:${kafka.controllerPort} (KRaft controller) is taken by another process`);
    }
    // Kafka 3.x logs through log4j 1 (reload4j) and would need another pom and logging config.
    if (!/^[4-9]\./.test(kafka.version)) throw new HarnessError(`kafka: KAFKA_VERSION=${kafka.version} unsupported (the harness runs Kafka 4.x)`);
    await resolveKafka(kafka, log);
    await prepareKafkaStorage(kafka, log);
    pid = launch(kafka, log);
  }
  await waitReady(kafka, pid);
  log(`kafka: ready on ${address} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function launch(kafka: KafkaSettings, log: Log): number {
  if (existsSync(kafka.logFile)) renameSync(kafka.logFile, `${kafka.logFile}.prev`);
  const output = openSync(kafka.logFile, 'a');
  // detached: a session of its own, so the broker outlives this process and no Ctrl-C or SIGHUP
  // aimed at the caller's process group reaches it. No JMX options: the JVM opens no port
  // besides Kafka's two listeners.
  const child = spawn(
    kafka.java,
    [
      ...kafka.heapOpts,
      ...kafka.jvmOpts,
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(KAFKA_ASSETS, 'log4j2.properties')}`,
      '-cp',
      join(kafka.libs, '*'),
      'kafka.Kafka',
      kafka.config,
    ],
    { detached: true, stdio: ['ignore', output, output] },
  );
  closeSync(output);
  child.unref();
  if (child.pid === undefined) throw new HarnessError(`kafka: could not run ${kafka.java}`);
  writeFileSync(kafka.pidFile, `${child.pid}\n`);
  log(`kafka: started Kafka ${kafka.version}, pid ${child.pid}, log ${kafka.logFile}`);
  return child.pid;
}

async function waitReady(kafka: KafkaSettings, pid: number): Promise<void> {
  const deadline = Date.now() + kafka.startTimeoutMs;
  for (;;) {
    const step = await kafkaNotReady(kafka.host, kafka.port);
    if (step === undefined) return;
    if (!processAlive(pid)) throw new HarnessError(`kafka: broker exited during startup\n${logExcerpt(kafka)}`);
    if (Date.now() >= deadline) {
      const excerpt = logExcerpt(kafka);
      // Don't leave a half-started broker behind for the next start to adopt.
      await stopKafka(kafka, { kill: true }, () => undefined).catch(() => undefined);
      throw new HarnessError(`kafka: not ready on ${kafka.host}:${kafka.port} after ${kafka.startTimeoutMs / 1000} s (${step})\n${excerpt}`);
    }
    await sleep(250);
  }
}

/** On a failed start: the errors first (the log's tail is often just metadata replay), then the tail itself. */
function logExcerpt(kafka: KafkaSettings): string {
  if (!existsSync(kafka.logFile)) return '';
  const lines = readFileSync(kafka.logFile, 'utf8')
    .split('\n')
    .map((line) => line.slice(0, 400));
  const errors = lines.filter((line) => /^\[[^\]]*\] (ERROR|FATAL) |^([a-z]+\.)+[A-Za-z]*(Exception|Error)\b|^Caused by: /.test(line)).slice(0, 20);
  return [`---- errors in ${kafka.logFile} ----`, ...errors, `---- last 40 lines of ${kafka.logFile} ----`, ...lines.slice(-41), '----'].join('\n');
}

/**
 * Stops the broker this harness started: SIGTERM (a single-node KRaft broker does a controlled
 * shutdown against its own controller), SIGKILL after `stopTimeoutMs`; `kill` sends SIGKILL at
 * once (a crash). Resolves once its listeners are closed, so a start right after finds them free.
 * Leaves alone whatever else listens on the port. Call under `withKafkaLock`.
 */
export async function stopKafka(kafka: KafkaSettings, { kill = false }: { kill?: boolean }, log: Log): Promise<void> {
  const pid = kafkaPid(kafka);
  if (!pid) {
    rmSync(kafka.pidFile, { force: true });
    const taken = await portOpen(kafka.host, kafka.port);
    log(taken ? `kafka: what listens on ${kafka.host}:${kafka.port} was not started by this harness; left alone` : 'kafka: not running');
    return;
  }
  log(`kafka: stopping pid ${pid} (${kill ? 'SIGKILL' : 'SIGTERM'})`);
  signal(pid, kill ? 'SIGKILL' : 'SIGTERM');
  if (!(await until(() => !processAlive(pid), kafka.stopTimeoutMs))) {
    log(`kafka: pid ${pid} still alive after ${kafka.stopTimeoutMs / 1000} s, sending SIGKILL`);
    signal(pid, 'SIGKILL');
    if (!(await until(() => !processAlive(pid), 10_000))) throw new HarnessError(`kafka: pid ${pid} survived SIGKILL`);
  }
  rmSync(kafka.pidFile, { force: true });
  const closed = async () => !(await portOpen(kafka.host, kafka.port)) && !(await portOpen(kafka.host, kafka.controllerPort));
  if (!(await until(closed, 10_000))) {
    throw new HarnessError(`kafka: pid ${pid} is gone but ${kafka.host}:${kafka.port}/${kafka.controllerPort} still accept connections`);
  }
  log('kafka: stopped');
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone: what the caller wanted.
  }
}

/** Stops our Kafka and deletes its data (topics, offsets); the next start formats a fresh store. Call under `withKafkaLock`. */
export async function resetKafka(kafka: KafkaSettings, log: Log): Promise<void> {
  await stopKafka(kafka, {}, log);
  if (await portOpen(kafka.host, kafka.port)) {
    throw new HarnessError(`kafka: something not started by this harness still listens on ${kafka.host}:${kafka.port}; not wiping`);
  }
  rmSync(kafka.data, { recursive: true, force: true });
  log(`kafka: deleted ${kafka.data}; the next 'up' formats a fresh store`);
}

/** One line for `status`, and whether Kafka answers. */
export async function kafkaStatus(kafka: KafkaSettings): Promise<{ ok: boolean; line: string }> {
  if (await kafkaAnswers(kafka.host, kafka.port)) {
    const pid = kafkaPid(kafka);
    const who = pid ? `Kafka ${pidVersion(pid)} started by this harness, pid ${pid}, log ${kafka.logFile}` : 'not started by this harness';
    return { ok: true, line: `reachable (${who})` };
  }
  const open = await portOpen(kafka.host, kafka.port);
  return { ok: false, line: open ? 'NOT reachable (port open, but no answer to Kafka requests)' : 'NOT reachable' };
}

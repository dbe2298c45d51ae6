/**
 * An Apache Kafka broker without Docker or a tarball: `scripts/kafka/pom.xml` is resolved once
 * from Maven Central into `<cache>/kafka-<version>/libs`, and its KRaft store is formatted once.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { HarnessError, type Log } from './log.js';
import { run } from './processes.js';
import { KAFKA_ASSETS, type KafkaSettings } from './settings.js';

const POM = join(KAFKA_ASSETS, 'pom.xml');
const TOOLS_LOG4J = join(KAFKA_ASSETS, 'log4j2-tools.properties');

/**
 * What `libs/.resolved` records. A changed pom or version re-resolves. The format (and the hash:
 * the first 16 hex digits of the pom's SHA-256) is the one the bash harness wrote, so its
 * downloads are reused.
 */
function resolvedMarker(kafka: KafkaSettings): string {
  const pom = createHash('sha256').update(readFileSync(POM)).digest('hex').slice(0, 16);
  return `kafka=${kafka.version} log4j=${kafka.log4jVersion} pom=${pom}`;
}

export const kafkaJarsResolved = (kafka: KafkaSettings): boolean => existsSync(join(kafka.libs, '.resolved'));

/** Puts the broker's jars into `kafka.libs`, unless an earlier run already did. */
export async function resolveKafka(kafka: KafkaSettings, log: Log): Promise<void> {
  const marker = join(kafka.libs, '.resolved');
  const want = resolvedMarker(kafka);
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === want) {
    log(`kafka: jars cached in ${kafka.libs}`);
    return;
  }
  log(`kafka: resolving org.apache.kafka:kafka_2.13:${kafka.version} into ${kafka.libs} (one-off)`);
  mkdirSync(kafka.home, { recursive: true });
  // Copied into a scratch folder and renamed at the end, so an interrupted download never leaves
  // a half-filled libs/ that looks complete.
  const partial = join(kafka.home, 'libs.partial');
  rmSync(partial, { recursive: true, force: true });
  const args = [
    '-B',
    '-q',
    '-f',
    POM,
    'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies',
    '-DincludeScope=runtime',
    `-DoutputDirectory=${partial}`,
    `-Dkafka.version=${kafka.version}`,
    `-Dlog4j.version=${kafka.log4jVersion}`,
  ];
  // cwd: keep anything Maven might write out of the git clone.
  const output = await run('mvn', args, { cwd: kafka.home, maxBuffer: 16 << 20 }).catch((error: unknown) => {
    const { code, stdout = '', stderr = '' } = error as { code?: unknown; stdout?: string; stderr?: string };
    if (code === 'ENOENT') throw new HarnessError("kafka: mvn is needed to fetch Kafka's jars", { cause: error });
    throw new HarnessError(`kafka: mvn could not resolve Kafka ${kafka.version}:\n${withoutColours(stdout + stderr)}`, { cause: error });
  });
  const noise = withoutColours(output.stdout + output.stderr).trim();
  if (noise) log(noise);
  if (!existsSync(join(partial, `kafka_2.13-${kafka.version}.jar`))) {
    throw new HarnessError(`kafka: kafka_2.13-${kafka.version}.jar missing after resolve`);
  }
  writeFileSync(join(partial, '.resolved'), `${want}\n`);
  rmSync(kafka.libs, { recursive: true, force: true });
  renameSync(partial, kafka.libs);
  log(`kafka: ${readdirSync(kafka.libs).filter((f) => f.endsWith('.jar')).length} jars in ${kafka.libs}`);
}

/** Maven 3.8 prints colour-reset codes even with -B -q. */
const withoutColours = (text: string) => stripVTControlCharacters(text);

/** The JVM options of Kafka's command-line tools: short-lived, so a small heap and C1 only, which start faster. */
export const kafkaToolJvm = (kafka: KafkaSettings, mainClass: string): string[] => [
  '-Xmx128m',
  '-XX:TieredStopAtLevel=1',
  '-XX:+UseSerialGC',
  `-Dlog4j2.configurationFile=${TOOLS_LOG4J}`,
  '-cp',
  join(kafka.libs, '*'),
  mainClass,
];

/** Runs a Kafka command-line tool (main class + args) from the cached jars; resolves with its stdout. */
export async function kafkaTool(kafka: KafkaSettings, mainClass: string, args: string[]): Promise<string> {
  const { stdout } = await run(kafka.java, [...kafkaToolJvm(kafka, mainClass), ...args], { maxBuffer: 16 << 20 });
  return stdout;
}

/** Runs a tool with the terminal attached (`npm run brokers tool ...`); resolves with its exit code. */
export function kafkaToolInteractive(kafka: KafkaSettings, mainClass: string, args: string[]): Promise<number> {
  const child = spawn(kafka.java, [...kafkaToolJvm(kafka, mainClass), ...args], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * Writes server.properties and formats the KRaft store if it never was. The store survives
 * `down`/`up` (topics and committed offsets kept, like a real broker restart); `reset` wipes it.
 */
export async function prepareKafkaStorage(kafka: KafkaSettings, log: Log): Promise<void> {
  mkdirSync(kafka.data, { recursive: true });
  const template = readFileSync(join(KAFKA_ASSETS, 'server.properties.template'), 'utf8');
  const values: Record<string, string> = { DATA_DIR: kafka.data, PORT: String(kafka.port), CONTROLLER_PORT: String(kafka.controllerPort) };
  writeFileSync(
    kafka.config,
    template.replace(/@([A-Z_]+)@/g, (whole, name: string) => values[name] ?? whole),
  );
  if (existsSync(join(kafka.data, 'meta.properties'))) {
    log(`kafka: reusing formatted store ${kafka.data} (topics and offsets kept; 'reset' wipes them)`);
    return;
  }
  const clusterId = (await kafkaTool(kafka, 'kafka.tools.StorageTool', ['random-uuid'])).trim();
  // Static quorum (controller.quorum.voters), so no --standalone here.
  await kafkaTool(kafka, 'kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', kafka.config]);
  log(`kafka: formatted new KRaft store ${kafka.data} (cluster id ${clusterId})`);
}

import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { it } from 'vitest';
import { harnessSettings } from '../../../scripts/brokers/index.js';
import { kafkaToolJvm } from '../../../scripts/brokers/kafka-install.js';
import { KAFKA_HOST, KAFKA_PORT } from '../../helpers/kafka.js';

const run = promisify(execFile);

/**
 * Kafka's Java console clients, run from the jars the broker harness downloaded for the local
 * Kafka, with the JVM options it runs Kafka's tools with (their logging on stderr, so stdout
 * carries nothing but records). They are the reference for what Java clients do with keys;
 * nothing of the gateway is on their class path.
 */
const { kafka } = harnessSettings();
const BOOTSTRAP = `${KAFKA_HOST}:${KAFKA_PORT}`;
const javaArgs = (mainClass: string, args: readonly string[]): string[] => [...kafkaToolJvm(kafka, mainClass), ...args];

/** Why the console clients cannot run here, or undefined when they can. */
async function missing(): Promise<string | undefined> {
  try {
    await run(kafka.java, ['-version'], { timeout: 30_000 });
  } catch (error) {
    return `java could not be run (${kafka.java}: ${(error as Error).message.split('\n')[0]}); install a JDK 17+ or set JAVA_HOME`;
  }
  const tools = existsSync(kafka.libs) ? readdirSync(kafka.libs).filter((file) => /^kafka-tools-[\d.]+\.jar$/.test(file)) : [];
  if (tools.length === 0) return `Kafka's jars are not in ${kafka.libs} (the broker harness downloads them when it first starts Kafka)`;
  return undefined;
}

/**
 * Decides whether a file that runs Kafka's Java console clients runs, as `requireBroker` does for
 * a broker: on CI (`CI` set) missing java or jars fail the run with the reason; on a developer
 * machine the file is skipped with a loud note.
 */
export async function requireJavaConsoleClients(): Promise<boolean> {
  const reason = await missing();
  if (!reason) return true;
  const message = `Kafka's Java console clients cannot run: ${reason}`;
  if (process.env['CI']) throw new Error(`${message}; CI is set, so this fails the run`);
  process.stderr.write(`\n*** SKIPPING Java console client tests: ${message}\n`);
  it.skip(message, () => {});
  return false;
}

/** One record as the Java console consumer printed it. */
export interface ConsoleRecord {
  readonly partition: number;
  readonly key: string;
  readonly value: string;
}

/**
 * Reads `count` records of `topic` from its beginning with `kafka-console-consumer`, printing
 * each record's partition and key as Java's deserializer and formatter see them. Rejects when
 * the tool fails or stops (after `timeoutMs` without a record) before `count`.
 */
export async function consoleConsume(topic: string, count: number, timeoutMs = 30_000): Promise<ConsoleRecord[]> {
  const args = [
    ...['--bootstrap-server', BOOTSTRAP, '--topic', topic, '--from-beginning'],
    ...['--max-messages', String(count), '--timeout-ms', String(timeoutMs)],
    ...['--formatter-property', 'print.partition=true', '--formatter-property', 'print.key=true'],
    ...['--formatter-property', 'key.separator=\t', '--formatter-property', 'line.separator=\n'],
  ];
  const { stdout, stderr } = await run(kafka.java, javaArgs('org.apache.kafka.tools.consumer.ConsoleConsumer', args), {
    timeout: timeoutMs + 60_000,
    maxBuffer: 64 * 1024 * 1024,
    encoding: 'utf8',
  });
  // "Partition:<n>\t<key>\t<value>"; keys and values here hold no tab or newline.
  const records = stdout
    .split('\n')
    .filter((line) => line.startsWith('Partition:'))
    .map((line) => {
      const [partition, key, ...value] = line.split('\t');
      return { partition: Number(partition!.slice('Partition:'.length)), key: key!, value: value.join('\t') };
    });
  if (records.length !== count) throw new Error(`kafka-console-consumer printed ${records.length} of ${count} records of ${topic}; its stderr:\n${stderr}`);
  return records;
}

/**
 * Writes `records` to `topic` with `kafka-console-producer` (`parse.key=true`): Java's producer,
 * its serializer and its default partitioner decide where each key goes. Resolves once the tool
 * exits after sending them all (acks=all, its default); rejects with its stderr otherwise.
 */
export function consoleProduce(topic: string, records: readonly { readonly key: string; readonly value: string }[]): Promise<void> {
  const args = ['--bootstrap-server', BOOTSTRAP, '--topic', topic, '--reader-property', 'parse.key=true', '--reader-property', 'key.separator=\t'];
  return new Promise((resolve, reject) => {
    const producer = spawn(kafka.java, javaArgs('org.apache.kafka.tools.ConsoleProducer', args), { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    producer.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => producer.kill('SIGKILL'), 90_000);
    producer.on('error', reject);
    producer.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`kafka-console-producer exited with ${code ?? signal}; its stderr:\n${stderr}`));
    });
    producer.stdin.end(records.map(({ key, value }) => `${key}\t${value}\n`).join(''), 'utf8');
  });
}

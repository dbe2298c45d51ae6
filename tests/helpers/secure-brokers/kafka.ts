import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import kafkajs from 'kafkajs';
import { harnessSettings } from '../../../scripts/brokers/index.js';
import { waitFor } from '../events.js';
import { freePort } from '../nats.js';
import type { TestPki } from './pki.js';

const { Kafka, logLevel } = kafkajs;
const run = promisify(execFile);

const { kafka: harnessKafka } = harnessSettings();
/** The jars the broker harness (`npm run brokers up`) resolves from Maven Central for the shared Kafka. */
export const KAFKA_LIBS = harnessKafka.libs;
const JAVA = harnessKafka.java;
const LOG4J_TOOLS = fileURLToPath(new URL('../../../scripts/kafka/log4j2-tools.properties', import.meta.url));
const LOG4J_BROKER = fileURLToPath(new URL('../../../scripts/kafka/log4j2.properties', import.meta.url));

/** Whether Kafka's jars are there (resolved by `npm run brokers up`, or the global setup of `npm test`). */
export const hasKafkaJars = (): boolean => existsSync(join(KAFKA_LIBS, '.resolved'));

/** SASL users of the secure Kafka: one per mechanism, each with a password of its own. */
export interface KafkaUsers {
  readonly plain: { readonly username: string; readonly password: string };
  readonly scram256: { readonly username: string; readonly password: string };
  readonly scram512: { readonly username: string; readonly password: string };
}

export interface SecureKafka {
  /** `127.0.0.1:<port>` of the SASL_SSL listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; no client certificate). */
  readonly saslSsl: string;
  /** `127.0.0.1:<port>` of the SSL listener that demands a client certificate signed by the test CA. */
  readonly mutualTls: string;
  readonly users: KafkaUsers;
  /** Its log, for a test that failed. */
  readonly logFile: string;
  stop(): Promise<void>;
}

const secret = () => randomBytes(12).toString('hex');

/**
 * A second Apache Kafka (KRaft, one node, 256 MiB heap) of the test's own, from the jars the
 * shared one runs from, with a fresh store in the PKI's folder and listeners on free ports:
 * SASL_SSL with PLAIN and SCRAM users (SCRAM credentials written at format time), and SSL with
 * client certificates required. Its certificate is the PKI's server certificate, as a PEM
 * keystore. Ready once a SASL_SSL client can describe the cluster (about 10 s on two cores).
 */
export async function startSecureKafka(pki: TestPki): Promise<SecureKafka> {
  const [sasl, mtls, internal, controller] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const users: KafkaUsers = {
    plain: { username: 'plain-user', password: secret() },
    scram256: { username: 'scram256-user', password: secret() },
    scram512: { username: 'scram512-user', password: secret() },
  };
  const dataDir = join(pki.dir, 'kafka-data');
  mkdirSync(dataDir);
  const properties = join(pki.dir, 'kafka.properties');
  writeFileSync(properties, serverProperties({ sasl, mtls, internal, controller }, dataDir, pki, users));

  const jvm = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Djava.awt.headless=true', '-cp', `${KAFKA_LIBS}/*`];
  await run(JAVA, [
    '-Xmx128m',
    `-Dlog4j2.configurationFile=${LOG4J_TOOLS}`,
    ...jvm,
    'kafka.tools.StorageTool',
    'format',
    '-t',
    randomBytes(16).toString('base64url'),
    '-c',
    properties,
    '-S',
    `SCRAM-SHA-256=[name=${users.scram256.username},password=${users.scram256.password}]`,
    '-S',
    `SCRAM-SHA-512=[name=${users.scram512.username},password=${users.scram512.password}]`,
  ]);

  const logFile = join(pki.dir, 'kafka.log');
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    JAVA,
    ['-Xmx256m', '-Xms64m', '-XX:+ExitOnOutOfMemoryError', `-Dlog4j2.configurationFile=${LOG4J_BROKER}`, ...jvm, 'kafka.Kafka', properties],
    {
      stdio: ['ignore', log, log],
    },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Should the test process end without afterAll, the broker must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };

  const saslSsl = `127.0.0.1:${sasl}`;
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`the secure Kafka exited (${child.exitCode}); see ${logFile}`);
        return answers(saslSsl, pki, users.plain);
      },
      90_000,
      `the secure Kafka on ${saslSsl} (log: ${logFile})`,
    );
  } catch (error) {
    await stop();
    throw new Error(
      `${String(error)}\n${readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => / (ERROR|FATAL) /.test(l))
        .slice(0, 10)
        .join('\n')}`,
    );
  }
  return { saslSsl, mutualTls: `127.0.0.1:${mtls}`, users, logFile, stop };
}

async function answers(broker: string, pki: TestPki, user: { username: string; password: string }): Promise<boolean> {
  const admin = new Kafka({
    brokers: [broker],
    ssl: { ca: pki.read(pki.caFile) },
    sasl: { mechanism: 'plain', ...user },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 1000,
  }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function serverProperties(
  ports: { sasl: number; mtls: number; internal: number; controller: number },
  dataDir: string,
  pki: TestPki,
  users: KafkaUsers,
): string {
  const { sasl, mtls, internal, controller } = ports;
  return `
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller}
listeners=SASL_SSL://127.0.0.1:${sasl},SSL://127.0.0.1:${mtls},INTERNAL://127.0.0.1:${internal},CONTROLLER://127.0.0.1:${controller}
advertised.listeners=SASL_SSL://127.0.0.1:${sasl},SSL://127.0.0.1:${mtls},INTERNAL://127.0.0.1:${internal}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL

ssl.keystore.type=PEM
ssl.keystore.location=${pki.serverKeystoreFile}
ssl.truststore.type=PEM
ssl.truststore.location=${pki.caFile}
listener.name.ssl.ssl.client.auth=required

listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${users.plain.username}="${users.plain.password}";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

log.dirs=${dataDir}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=1
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.enable=false
`;
}

import type { Admin } from 'kafkajs';
import { BrokerUnavailableError, errorMessage } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import type { KafkaTopicSpec } from './options.js';

/**
 * Creates Kafka topics on first use with the configured partitions and retention. Clients are
 * created with `allowAutoTopicCreation: false`, so a topic never springs into existence with the
 * broker's `num.partitions` instead. An existing topic is left as it is (changing partitions
 * remaps keys; that is an operator's decision) and a mismatch is logged.
 */
export class TopicManager {
  private readonly ensured = new Map<string, Promise<void>>();

  constructor(
    private readonly admin: Admin,
    private readonly logger: Logger,
  ) {}

  /**
   * Resolves once every topic exists and has a leader. Safe to call concurrently and often: each
   * topic is created once per broker instance; a failed attempt is forgotten, so the next call
   * tries again. Rejects with `BrokerUnavailableError`.
   */
  async ensure(specs: readonly KafkaTopicSpec[]): Promise<void> {
    const missing = specs.filter((spec) => !this.ensured.has(spec.name));
    if (missing.length > 0) {
      const creating = this.create(missing);
      for (const spec of missing) {
        const entry = creating.then(() => undefined);
        this.ensured.set(spec.name, entry);
        entry.catch(() => {
          if (this.ensured.get(spec.name) === entry) this.ensured.delete(spec.name);
        });
      }
    }
    await Promise.all(specs.map((spec) => this.ensured.get(spec.name)));
  }

  private async create(specs: readonly KafkaTopicSpec[]): Promise<void> {
    let created: boolean;
    try {
      created = await this.admin.createTopics({
        waitForLeaders: true,
        topics: specs.map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          configEntries: spec.retentionMs === undefined ? [] : [{ name: 'retention.ms', value: String(spec.retentionMs) }],
        })),
      });
    } catch (cause) {
      const names = specs.map((spec) => spec.name);
      this.logger.warn({ err: cause, topics: names }, 'could not create kafka topics');
      throw new BrokerUnavailableError(`could not create Kafka topics ${names.join(', ')}: ${errorMessage(cause)}`, { cause });
    }
    if (created) this.logger.info({ topics: specs }, 'created kafka topics');
    // createTopics answers false when all of them existed; with a mix it creates the rest.
    await this.checkExisting(specs);
  }

  private async checkExisting(specs: readonly KafkaTopicSpec[]): Promise<void> {
    try {
      const { topics } = await this.admin.fetchTopicMetadata({ topics: specs.map((spec) => spec.name) });
      for (const spec of specs) {
        const found = topics.find((t) => t.name === spec.name);
        if (found && found.partitions.length !== spec.partitions) {
          this.logger.warn(
            { topic: spec.name, partitions: found.partitions.length, configured: spec.partitions },
            'kafka topic exists with another partition count; using it as it is',
          );
        }
      }
    } catch (error) {
      // Only a diagnostic: the topic exists, which is what callers wait for.
      this.logger.debug({ err: error, topics: specs.map((spec) => spec.name) }, 'could not read kafka topic metadata');
    }
  }
}

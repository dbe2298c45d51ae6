import { describe, expect, it } from 'vitest';
import { loadConfig, SETTING_DEFAULTS } from '../../src/config/config.js';

describe('environment → nested configuration', () => {
  it('treats a blank variable as unset', () => {
    expect(loadConfig({ PORT: '', RELAY_BATCH_SIZE: '', KAFKA_BROKERS: '' })).toMatchObject({
      port: 4000,
      relay: { batchSize: 256 },
      brokers: { kafka: { brokers: ['127.0.0.1:9092'] } },
    });
  });

  it('puts each variable where the configuration reads it, in its form', () => {
    const config = loadConfig({ RELAY_LEASE_MS: '5000', OUTBOX_RETENTION_HOURS: '2', NATS_MAX_AGE_MS: '60000', METRICS: 'false', KAFKA_BROKERS: 'a:1,b:2' });
    expect(config.relay).toMatchObject({ leaseMs: 5000, retentionMs: 2 * 3600 * 1000 });
    expect(config.brokers.nats.maxAgeMs).toBe(60_000);
    expect(config.metrics).toBe(false);
    expect(config.brokers.kafka.brokers).toEqual(['a:1', 'b:2']);
  });

  it('names a bad value in a nested group by its variable', () => {
    expect(() => loadConfig({ RELAY_BATCH_SIZE: '0' })).toThrow(/^invalid environment: RELAY_BATCH_SIZE: /);
    expect(() => loadConfig({ KAFKA_SSL: 'yes' })).toThrow(/^invalid environment: KAFKA_SSL: /);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://a.example,ftp://b' })).toThrow(
      /^invalid environment: CORS_ORIGINS\[1\]: must be a comma-separated list of origins/,
    );
  });

  it('gives components the defaults the environment has', () => {
    expect(SETTING_DEFAULTS.relay).toEqual(loadConfig({}).relay);
    expect(SETTING_DEFAULTS.brokers.memory.retainEvents).toBe(10_000);
  });
});

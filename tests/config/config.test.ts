import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig, parseConfigFile } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';

const consumer = { name: 'billing', topic: 'orders', webhook: { url: 'http://127.0.0.1:8080/events' } };

function writeConfig(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gw-config-')), 'gateway.json');
  writeFileSync(path, content);
  return path;
}

describe('configuration', () => {
  it('has defaults for everything', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      databasePath: './data/gateway.db',
      broker: 'memory',
      maxEventBytes: 262144,
      consumers: [],
      stopTimeoutMs: 25_000,
    });
  });

  it('has GraphQL Armor-like limits by default, all configurable', () => {
    expect(loadConfig({}).limits).toEqual({
      introspection: true,
      maxRequestBytes: 1024 * 1024,
      batchLimit: 10,
      maxDepth: 8,
      maxCost: 5000,
      maxAliases: 15,
      maxDirectives: 50,
      maxTokens: 1000,
      wsMaxPayloadBytes: 64 * 1024,
      wsInitTimeoutMs: 3000,
      wsMaxSubscriptions: 20,
    });
    expect(loadConfig({ NODE_ENV: 'production' }).limits.introspection).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', INTROSPECTION: 'true' }).limits.introspection).toBe(true);
    expect(loadConfig({ GRAPHQL_MAX_DEPTH: '12', WS_MAX_SUBSCRIPTIONS: '5' }).limits).toMatchObject({ maxDepth: 12, wsMaxSubscriptions: 5 });
  });

  it('fills consumer defaults: all types, 5 attempts, exponential backoff', () => {
    const [parsed] = parseConfigFile({ consumers: [consumer] }).consumers;
    expect(parsed).toEqual({
      ...consumer,
      webhook: { url: consumer.webhook.url, timeoutMs: 5000, headers: {} },
      maxAttempts: 5,
      backoff: { initialMs: 1000, maxMs: 60000, multiplier: 2, jitter: 0.2 },
      prefetch: 10,
    });
  });

  it.each([
    [{ consumers: [{ ...consumer, topic: 'has space' }] }, 'consumers[0].topic'],
    [{ consumers: [{ ...consumer, webhook: { url: 'ftp://x' } }] }, 'consumers[0].webhook.url'],
    [{ consumers: [{ ...consumer, maxAttempts: 0 }] }, 'consumers[0].maxAttempts'],
    [{ consumers: [{ ...consumer, backoff: { initialMs: 10, maxMs: 5 } }] }, 'consumers[0].backoff'],
    [{ consumers: [{ ...consumer, retries: 3 }] }, 'unknown key consumers[0].retries'],
    [{ consumer: [] }, 'unknown key consumer'],
    [{ consumers: [consumer, consumer] }, 'consumers[1].name: "billing" is used twice'],
  ])('names the bad key in %j', (json, expected) => {
    expect(() => parseConfigFile(json)).toThrow(ConfigError);
    expect(() => parseConfigFile(json)).toThrow(expected);
  });

  it('takes a Standard Webhooks secret, or a list of them while rotating, and never repeats a bad one', () => {
    const secret = `whsec_${Buffer.from('0123456789abcdefghijklmn').toString('base64')}`;
    const one = parseConfigFile({ consumers: [{ ...consumer, webhook: { url: consumer.webhook.url, secret } }] });
    expect(one.consumers[0]!.webhook!.secret).toEqual([secret]);
    const two = parseConfigFile({ consumers: [{ ...consumer, webhook: { url: consumer.webhook.url, secret: [secret, secret] } }] });
    expect(two.consumers[0]!.webhook!.secret).toHaveLength(2);
    for (const bad of ['s3cr3t-no-prefix', 'whsec_not base64!', []]) {
      const attempt = () => parseConfigFile({ consumers: [{ ...consumer, webhook: { url: consumer.webhook.url, secret: bad } }] });
      expect(attempt).toThrow(/consumers\[0\]\.webhook\.secret/);
      if (typeof bad === 'string') expect(attempt).not.toThrow(bad);
    }
  });

  it('takes a consumer without a webhook, for a handler function given in code; without one the app refuses to build', () => {
    const config = {
      ...loadConfig({ DATABASE_PATH: ':memory:', LOG_LEVEL: 'silent' }),
      ...parseConfigFile({ consumers: [{ name: 'audit', topic: 'orders' }] }),
    };
    expect(config.consumers[0]).toMatchObject({ name: 'audit', topic: 'orders' });
    expect(config.consumers[0]!.webhook).toBeUndefined();
    expect(() => buildApp(config)).toThrow(/consumer "audit" has no handler: give it a "webhook"/);
    const app = buildApp(config, { handlers: { audit: () => undefined } });
    expect(app.services.consumers.names()).toEqual(['audit']);
  });

  it('stops on a config file that is not JSON, naming the file', () => {
    const path = writeConfig('{ "consumers": [ ');
    expect(() => loadConfig({ GATEWAY_CONFIG: path })).toThrow(/GATEWAY_CONFIG .*gateway.json: not valid JSON/);
  });

  it('stops on a config file that does not exist', () => {
    expect(() => loadConfig({ GATEWAY_CONFIG: '/nonexistent/gateway.json' })).toThrow(/cannot read the file \(ENOENT\)/);
  });

  it('names a bad environment variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/invalid environment: PORT/);
    expect(() => loadConfig({ BROKER: 'carrier-pigeon' })).toThrow(/BROKER/);
    expect(() => loadConfig({ STOP_TIMEOUT_MS: 'abc' })).toThrow(/STOP_TIMEOUT_MS/);
  });

  it('selects PostgreSQL with DATABASE_URL, and refuses anything else without repeating the value', () => {
    expect(loadConfig({}).databaseUrl).toBeUndefined();
    const url = 'postgresql://gateway:s3cret@db.internal:5432/events';
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
    for (const bad of ['mysql://gateway:s3cret@db/events', 'postgres://gateway:s3cret#x@db/events']) {
      const error = (() => {
        try {
          loadConfig({ DATABASE_URL: bad });
        } catch (e) {
          return e as Error;
        }
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.message).toMatch(/invalid environment: DATABASE_URL: (must be a postgres:\/\/|is not a valid URL)/);
      expect(error!.message).not.toContain('s3cret');
    }
  });

  it('reads consumers from the file', () => {
    const path = writeConfig(JSON.stringify({ consumers: [consumer] }));
    expect(loadConfig({ GATEWAY_CONFIG: path }).consumers.map((c) => c.name)).toEqual(['billing']);
  });
});

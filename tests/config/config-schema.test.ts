import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printConfigSchema } from '../../scripts/print-config-schema.js';
import { loadConfig } from '../../src/config/config.js';

describe('config.schema.json', () => {
  it('matches the schema the code validates with (run `npm run config:schema` after a change)', () => {
    const committed = readFileSync(new URL('../../config.schema.json', import.meta.url), 'utf8');
    expect(printConfigSchema()).toBe(committed);
  });

  it('describes every field an editor completes', () => {
    const schema = JSON.parse(printConfigSchema()) as {
      properties: Record<string, { description?: string; items?: { properties: Record<string, { description?: string }> } }>;
    };
    expect(Object.keys(schema.properties)).toEqual(['$schema', 'consumers', 'topics', 'auth']);
    const consumer = schema.properties['consumers']!.items!.properties;
    for (const [key, field] of Object.entries(consumer)) expect(field.description, `consumers[].${key}`).toBeTruthy();
  });

  it('lets a config file name its schema with "$schema"', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gateway-config-')), 'gateway.json');
    writeFileSync(path, JSON.stringify({ $schema: './config.schema.json', consumers: [{ name: 'billing', topic: 'orders' }] }));
    const config = loadConfig({ GATEWAY_CONFIG: path });
    expect(config.consumers.map((c) => c.name)).toEqual(['billing']);
  });
});

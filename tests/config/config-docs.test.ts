import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printConfigTable, README_PATH, withConfigTable } from '../../scripts/print-config-docs.js';
import { loadConfig, settingsSchema } from '../../src/config/config.js';
import { settingRows } from '../../src/config/env-settings.js';

describe("README's configuration table", () => {
  it('matches the settings schema (run `npm run config:docs` after a change)', () => {
    const committed = readFileSync(README_PATH, 'utf8');
    expect(withConfigTable(committed)).toBe(committed);
  });

  it('documents every variable once, each with a description', () => {
    const rows = settingRows(settingsSchema);
    expect(new Set(rows.map((row) => row.variable)).size).toBe(rows.length);
    for (const row of rows) {
      expect(row.description, row.variable).toBeTruthy();
      expect(printConfigTable()).toContain(`| \`${row.variable}\` |`);
    }
  });

  it('shows the defaults the gateway applies', () => {
    const table = printConfigTable();
    expect(table).toContain('| `PORT` | `4000` |');
    expect(table).toContain('| `OUTBOX_RETENTION_HOURS` | `168` |');
    expect(loadConfig({}).relay.retentionMs).toBe(168 * 3600 * 1000);
    expect(table).toContain('| `KAFKA_BROKERS` | `127.0.0.1:9092` |');
    expect(loadConfig({}).brokers.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(table).toContain('| `CORS_ORIGINS` | — |');
  });

  it('notices a hand edit of the table', () => {
    const committed = readFileSync(README_PATH, 'utf8');
    const edited = committed.replace(/^\| `PORT` \| `4000` \|.*\n/m, '');
    expect(edited).not.toBe(committed);
    expect(withConfigTable(edited)).toBe(committed);
  });
});

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/events.js';

const ROOT = new URL('../..', import.meta.url).pathname;

function runGateway(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

describe('the gateway process', () => {
  it('refuses to start on a broken config file, naming the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-'));
    const config = join(dir, 'gateway.json');
    writeFileSync(config, JSON.stringify({ consumers: [{ name: 'billing', topic: 'orders', webhook: { url: 'not a url' } }] }));
    const run = runGateway({ GATEWAY_CONFIG: config, DATABASE_PATH: join(dir, 'g.db') });
    expect(await run.exited).toBe(1);
    expect(run.output().stderr).toContain('consumers[0].webhook.url: must be an http(s) URL');
  });

  it('starts with no setup on the embedded default and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-'));
    const run = runGateway({ DATABASE_PATH: join(dir, 'data', 'g.db') });
    const line = await waitFor(
      () =>
        run
          .output()
          .stdout.split('\n')
          .find((l) => l.includes('event-gateway listening')),
      20_000,
      'listening',
    );
    const { url } = JSON.parse(line) as { url: string };
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { publishEvent(input: { topic: "t", type: "a", data: 1 }) { outboxId } }' }),
    });
    expect(((await response.json()) as { data: unknown }).data).toEqual({ publishEvent: { outboxId: '1' } });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output().stdout).toContain('event-gateway stopped');
  });
});

/**
 * Writes config.schema.json, the JSON Schema of the GATEWAY_CONFIG file (`npm run config:schema`).
 * The file is committed and a test fails when it drifts from src/config/file-schema.ts. A config
 * file that starts with `"$schema": "./config.schema.json"` gets completion and checks in editors.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configFileJsonSchema } from '../src/config/file-schema.js';

export function printConfigSchema(): string {
  return `${JSON.stringify(configFileJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = fileURLToPath(new URL('../config.schema.json', import.meta.url));
  writeFileSync(target, printConfigSchema());
  process.stdout.write(`wrote ${target}\n`);
}

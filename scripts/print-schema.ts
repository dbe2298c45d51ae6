/**
 * Prints the GraphQL SDL to schema.graphql (`npm run schema:print`). The file is committed and a
 * test fails when it drifts from the code, so every API change shows up in review.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { gatewaySchema } from '../src/schema/index.js';

export function printGatewaySchema(): string {
  return `${printSchema(lexicographicSortSchema(gatewaySchema()))}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = fileURLToPath(new URL('../schema.graphql', import.meta.url));
  writeFileSync(target, printGatewaySchema());
  process.stdout.write(`wrote ${target}\n`);
}

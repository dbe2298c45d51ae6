import type { GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './events.js';
import './outbox.js';
import './dead-letters.js';
import './consumers.js';
import './brokers.js';

let schema: GraphQLSchema | undefined;

/** The gateway's GraphQL schema (built once; every domain module above adds to it). */
export function gatewaySchema(): GraphQLSchema {
  schema ??= builder.toSchema({ sortSchema: false });
  return schema;
}

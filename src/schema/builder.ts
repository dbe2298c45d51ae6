import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ValidationPlugin from '@pothos/plugin-validation';
import { InvalidInputError } from '../errors.js';
import { formatPath } from '../util/path.js';
import type { GatewayContext } from './context.js';

/** The one Pothos builder; each domain module in this folder adds its types and fields. */
export const builder = new SchemaBuilder<{
  Context: GatewayContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
}>({
  plugins: [RelayPlugin, ValidationPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
  },
  validation: {
    validationError: (failure) => {
      const issue = failure.issues[0];
      const path = formatPath(issue?.path ?? []);
      return new InvalidInputError(path ? `${path}: ${issue?.message}` : (issue?.message ?? 'invalid input'), {
        details: { field: path || undefined },
      });
    },
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

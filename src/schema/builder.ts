import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import { UnauthenticatedError } from '../auth/authenticator.js';
import { allows } from '../auth/scopes.js';
import { ForbiddenError, InvalidInputError } from '../errors.js';
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
  /** `publish` and `subscribe` take the `<topic>.<type>` targets an operation touches. */
  AuthScopes: { admin: boolean; publish: readonly string[]; subscribe: readonly string[] };
  DefaultNodeNullability: false;
}>({
  // Scope checks run first: a caller without the scope learns nothing from validation errors.
  plugins: [ScopeAuthPlugin, RelayPlugin, ValidationPlugin],
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: ({ principal }) => ({
      admin: principal.grant.admin,
      publish: (targets) => allows(principal.grant, 'publish', targets),
      subscribe: (targets) => allows(principal.grant, 'subscribe', targets),
    }),
    unauthorizedError: (_parent, { principal }, info) => {
      const what = `${info.parentType.name}.${info.fieldName}`;
      if (principal.kind === 'anonymous') {
        return new UnauthenticatedError(`authentication required for ${what}: send an API key (x-api-key) or a bearer token`);
      }
      return new ForbiddenError(`${principal.kind} "${principal.name}" lacks the scope ${what} needs`);
    },
  },
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

/**
 * What a caller may do. Scopes are `admin`, `publish:<pattern>` and `subscribe:<pattern>`; a
 * pattern is matched against `<topic>.<type>`, and `*` stands for any run of characters:
 * `publish:orders.*` publishes any type to `orders`, `publish:orders.order.created` only that
 * type, `subscribe:*` reads every topic.
 */
export interface Grant {
  readonly admin: boolean;
  readonly publish: readonly RegExp[];
  readonly subscribe: readonly RegExp[];
}

export type Action = 'publish' | 'subscribe';

export const NO_GRANT: Grant = { admin: false, publish: [], subscribe: [] };
export const FULL_GRANT: Grant = { admin: true, publish: [/^.*$/s], subscribe: [/^.*$/s] };

export function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's');
}

/** Unknown scopes are ignored here; configuration validation rejects them for API keys. */
export function grantOf(scopes: readonly string[]): Grant {
  const publish: RegExp[] = [];
  const subscribe: RegExp[] = [];
  let admin = false;
  for (const scope of scopes) {
    if (scope === 'admin') admin = true;
    else if (scope.startsWith('publish:')) publish.push(patternToRegExp(scope.slice('publish:'.length)));
    else if (scope.startsWith('subscribe:')) subscribe.push(patternToRegExp(scope.slice('subscribe:'.length)));
  }
  return { admin, publish, subscribe };
}

/** The `<topic>.<type>` a pattern is matched against; a subscription to every type is `<topic>.*`. */
export function target(topic: string, type?: string): string {
  return `${topic}.${type ?? '*'}`;
}

export function allows(grant: Grant, action: Action, targets: readonly string[]): boolean {
  const patterns = grant[action];
  return targets.every((t) => patterns.some((pattern) => pattern.test(t)));
}

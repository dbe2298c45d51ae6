import type { Credentials } from './authenticator.js';

type HeaderValue = string | string[] | null | undefined;

const first = (value: HeaderValue | unknown): string | undefined => {
  if (Array.isArray(value)) return typeof value[0] === 'string' ? value[0] : undefined;
  return typeof value === 'string' ? value : undefined;
};

/** From HTTP: `authorization: Bearer <JWT>` or `x-api-key: <key>`. */
export function credentialsFromHeaders(get: (name: string) => HeaderValue): Credentials {
  return { authorization: first(get('authorization')), apiKey: first(get('x-api-key')) };
}

/**
 * From a graphql-ws `connection_init` payload. Clients put credentials there in several shapes;
 * accepted: `authorization`, `Authorization`, `x-api-key`, `apiKey`, also nested in `headers`.
 */
export function credentialsFromConnectionParams(params: Readonly<Record<string, unknown>> | undefined): Credentials {
  if (!params) return {};
  const headers = typeof params['headers'] === 'object' && params['headers'] !== null ? (params['headers'] as Record<string, unknown>) : {};
  const pick = (...names: string[]) => {
    for (const source of [params, headers]) {
      for (const name of names) {
        const value = first(source[name]);
        if (value) return value;
      }
    }
    return undefined;
  };
  return { authorization: pick('authorization', 'Authorization'), apiKey: pick('x-api-key', 'X-Api-Key', 'apiKey') };
}

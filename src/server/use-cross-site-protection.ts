import type { IncomingHttpHeaders } from 'node:http';
import type { Plugin } from 'graphql-yoga';

/**
 * Which web pages may use the gateway from a browser. Same-origin pages (GraphiQL, served by the
 * gateway) always may; other origins only when listed (`CORS_ORIGINS`). Requests without an
 * `Origin` header do not come from a web page's script (curl, app backends) and are not affected.
 */
export class OriginPolicy {
  readonly #allowed: ReadonlySet<string>;

  constructor(allowed: readonly string[]) {
    this.#allowed = new Set(allowed.map((origin) => new URL(origin).origin));
  }

  /** A listed origin: it gets CORS headers. */
  listed(origin: string): boolean {
    return this.#allowed.has(origin);
  }

  /** May a request with these headers act? No `Origin`, the gateway's own, or a listed one. */
  allows(origin: string | undefined | null, host: string | undefined | null): boolean {
    if (origin === undefined || origin === null) return true;
    return this.listed(origin) || isSameOrigin(origin, host);
  }

  /** For the WebSocket upgrade, which browsers send cross-site without any CORS check. */
  allowsUpgrade(headers: IncomingHttpHeaders): boolean {
    return this.allows(headers.origin, headers.host);
  }
}

function isSameOrigin(origin: string, host: string | undefined | null): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Media types a browser sends cross-site without a preflight (the CORS "simple" ones). A page on
 * any site can POST a form to the gateway; refusing these bodies is what keeps such a form from
 * running an operation. GraphQL clients send `application/json` (or `application/graphql-response+json`).
 */
const SIMPLE_CONTENT_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/**
 * No cross-site access by default.
 *
 * - CORS headers only for origins in `policy` (never a reflected origin, never credentials for an
 *   unlisted one); a preflight from an unlisted origin is answered without allow headers, so the
 *   browser does not send the request.
 * - A POST whose body a browser could send without a preflight (form-encoded, multipart, text/plain
 *   or no content type) is refused with 415 before anything runs.
 * - A request carrying an `Origin` that is neither the gateway's own nor listed is refused with 403:
 *   that covers the simple GET requests (queries, SSE) a page could send cross-site.
 */
export function useCrossSiteProtection(policy: OriginPolicy): Plugin {
  return {
    onRequest({ request, fetchAPI, endResponse }) {
      const origin = request.headers.get('origin');
      if (request.method === 'OPTIONS') return; // answered by yoga's CORS handling, headers or none
      if (!policy.allows(origin, request.headers.get('host'))) {
        endResponse(refusal(fetchAPI, 403, 'CROSS_SITE_FORBIDDEN', `requests from ${origin} are not allowed; list the origin in CORS_ORIGINS`));
        return;
      }
      if (request.method === 'POST' && isSimpleContentType(request.headers.get('content-type'))) {
        endResponse(
          refusal(
            fetchAPI,
            415,
            'UNSUPPORTED_MEDIA_TYPE',
            'send operations as application/json: form, multipart and text/plain bodies are refused, since any web page can send them',
          ),
        );
      }
    },
  };
}

/** yoga's `cors` option: allow headers for listed origins only. */
export function corsFor(policy: OriginPolicy) {
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (!origin || !policy.listed(origin)) return false as const;
    return { origin: [origin], credentials: true, exposedHeaders: ['x-correlation-id'] };
  };
}

function isSimpleContentType(header: string | null): boolean {
  if (header === null) return true;
  const mediaType = header.split(';', 1)[0]!.trim().toLowerCase();
  return mediaType === '' || SIMPLE_CONTENT_TYPES.has(mediaType);
}

function refusal(fetchAPI: { Response: typeof Response }, status: number, code: string, message: string): Response {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

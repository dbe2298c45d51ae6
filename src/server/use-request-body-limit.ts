import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

type FetchApi = Parameters<NonNullable<Plugin['onRequestParse']>>[0]['fetchAPI'];

function tooLarge(): GraphQLError {
  return new GraphQLError('Request body too large', { extensions: { code: 'REQUEST_ENTITY_TOO_LARGE', http: { status: 413 } } });
}

/**
 * Refuses a request body over `limit` bytes with 413 `REQUEST_ENTITY_TOO_LARGE`, before anything
 * is parsed or executed. It stands in for Yoga's `maxRequestBodySize`, which pipes every body
 * through a counting `TransformStream`: a stream pipeline, an `AbortController` and the
 * `DOMException` it aborts with, per request, which cost a trivial query half of its CPU (see
 * `bench/RESULTS.md`). A body with a `Content-Length` needs no counting: it is checked against the
 * limit, and Node's HTTP parser never hands over more bytes than it declares (what follows is
 * the next request on the connection). Only a chunked body, whose length is not known in
 * advance, is counted as it is read.
 */
export function useRequestBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const contentLength = request.headers.get('content-length');
      // Node's HTTP parser answers 400 itself to a Content-Length that is not one decimal number.
      if (contentLength !== null) {
        if (Number(contentLength) > limit) throw tooLarge();
        return;
      }
      if (!requestParser || !request.body) return;
      setRequestParser((unlimited) => requestParser(counted(unlimited, limit, fetchAPI)));
    },
  };
}

/** The request with a body that errors with `tooLarge` once more than `limit` bytes were read. */
function counted(request: Request, limit: number, fetchAPI: FetchApi): Request {
  let read = 0;
  // A native stream takes only a native TransformStream, the ponyfill's only the ponyfill's.
  const Transform = request.body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  const body = request.body!.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength;
        if (read > limit) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, { method: request.method, headers: request.headers, signal: request.signal, body, duplex: 'half' } as RequestInit);
}

import { InvalidInputError } from '../errors.js';

/** A page request in the shape Pothos' `resolveCursorConnection` hands over. */
export interface PageRequest {
  /** Opaque cursor: return items after it in list order. */
  readonly after?: string | undefined;
  /** Opaque cursor: return items before it in list order. */
  readonly before?: string | undefined;
  readonly limit: number;
  /** True for `last:` pages: read from the end, in reverse list order. */
  readonly inverted: boolean;
}

/**
 * Cursors are opaque to clients (base64url), but carry a kind prefix so that a cursor from one
 * list handed to another fails loudly instead of paging somewhere odd.
 */
export function encodeCursor(kind: string, value: string | number): string {
  return Buffer.from(`${kind}:${value}`).toString('base64url');
}

export function decodeCursor(kind: string, cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const prefix = `${kind}:`;
  if (!text.startsWith(prefix)) throw new InvalidInputError(`invalid cursor "${cursor}"`);
  return text.slice(prefix.length);
}

export function decodeNumericCursor(kind: string, cursor: string | undefined): number | undefined {
  const value = decodeCursor(kind, cursor);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidInputError(`invalid cursor "${cursor}"`);
  return n;
}

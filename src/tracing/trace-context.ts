import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as the gateway carries it: the
 * `traceparent` and `tracestate` of an event, stored with it as the CloudEvents distributed-tracing
 * extension. Pure and synchronous; no OpenTelemetry needed.
 */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** The parent span: 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  /** Trace flags; bit 0 is "sampled". */
  readonly flags: number;
}

const HEX = /^[0-9a-f]+$/;
const ZEROS_32 = '0'.repeat(32);
const ZEROS_16 = '0'.repeat(16);
/** `00-` + 32 + `-` + 16 + `-` + 2. */
const VERSION_00_LENGTH = 55;

/**
 * Parses a `traceparent` header or attribute; null for anything W3C says to ignore (wrong shape,
 * uppercase hex, an all-zero id, version `ff`, a version-00 value with anything after it). A
 * higher version is read for the fields version 00 defines, as the specification asks.
 */
export function parseTraceparent(value: unknown): TraceParent | null {
  if (typeof value !== 'string' || value.length < VERSION_00_LENGTH) return null;
  const text = value.trim();
  if (text.length < VERSION_00_LENGTH || text[2] !== '-' || text[35] !== '-' || text[52] !== '-') return null;
  const version = text.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return null;
  if (version === '00' ? text.length !== VERSION_00_LENGTH : text.length > VERSION_00_LENGTH && text[55] !== '-') return null;
  const traceId = text.slice(3, 35);
  const spanId = text.slice(36, 52);
  const flags = text.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(spanId) || !HEX.test(flags)) return null;
  if (traceId === ZEROS_32 || spanId === ZEROS_16) return null;
  return { traceId, spanId, flags: Number.parseInt(flags, 16) };
}

/** A `traceparent` in version 00 (the only version this gateway writes). */
export function formatTraceparent(parent: TraceParent): string {
  return `00-${parent.traceId}-${parent.spanId}-${(parent.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The trace id of a valid `traceparent`, else null. */
export const traceIdOf = (traceparent: string | null): string | null => parseTraceparent(traceparent)?.traceId ?? null;

export const SAMPLED = 0x01;

/**
 * Random ids come from one buffer refilled now and then: one `randomFillSync` per ~170 new traces
 * instead of one per id, since every event published without an incoming trace needs one.
 */
const POOL = Buffer.alloc(4096);
let poolOffset = POOL.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL.length) {
      randomFillSync(POOL);
      poolOffset = 0;
    }
    const hex = POOL.toString('hex', poolOffset, (poolOffset += bytes));
    // All zeros is invalid (and, at 2^-64 or less, only ever seen in a broken random source).
    if (/[^0]/.test(hex)) return hex;
  }
}

export const randomTraceId = (): string => randomHex(16);
export const randomSpanId = (): string => randomHex(8);

/**
 * A new trace for work that arrived without one: random trace and span ids, marked sampled so
 * that receivers whose sampler follows the parent record their part of it.
 */
export function newTraceparent(): string {
  return formatTraceparent({ traceId: randomTraceId(), spanId: randomSpanId(), flags: SAMPLED });
}

/** Most list members W3C lets a `tracestate` carry. */
const MAX_TRACESTATE_MEMBERS = 32;
const SIMPLE_KEY = /^[a-z0-9][_0-9a-z\-*/]{0,255}$/;
const TENANT_KEY = /^[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}$/;
const MEMBER_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * True when `value` is a `tracestate` W3C lets a vendor pass on: comma-separated `key=value`
 * members (empty ones and spaces around commas allowed), at most 32, keys unique.
 */
export function isValidTracestate(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 8192) return false;
  const keys = new Set<string>();
  for (const raw of value.split(',')) {
    const member = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return false;
    const key = member.slice(0, eq);
    if (!(SIMPLE_KEY.test(key) || TENANT_KEY.test(key)) || !MEMBER_VALUE.test(member.slice(eq + 1)) || keys.has(key)) return false;
    keys.add(key);
  }
  return keys.size > 0 && keys.size <= MAX_TRACESTATE_MEMBERS;
}

/** The trace context of one event: a valid `traceparent`, and its `tracestate` when valid. */
export interface EventTrace {
  readonly traceparent: string;
  readonly tracestate: string | null;
}

/**
 * Checks a `traceparent`/`tracestate` pair as it arrived (a request header, a foreign message):
 * null when the `traceparent` is absent or invalid — then the `tracestate` means nothing either —
 * and the `tracestate` dropped alone when only it is invalid.
 */
export function checkTrace(traceparent: unknown, tracestate: unknown): EventTrace | null {
  const parent = parseTraceparent(traceparent);
  if (!parent) return null;
  return { traceparent: formatTraceparent(parent), tracestate: isValidTracestate(tracestate) ? tracestate.trim() : null };
}

import { describe, expect, it } from 'vitest';
import {
  checkTrace,
  formatTraceparent,
  isValidTracestate,
  newTraceparent,
  parseTraceparent,
  randomSpanId,
  randomTraceId,
  traceIdOf,
} from '../../src/tracing/trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe('W3C traceparent', () => {
  it('reads the fields of a version-00 traceparent and writes it back unchanged', () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, flags: 1 });
    expect(formatTraceparent(parseTraceparent(VALID)!)).toBe(VALID);
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.flags).toBe(0);
    expect(traceIdOf(VALID)).toBe(TRACE_ID);
  });

  it.each([
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['all-zero span id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['uppercase hex', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['a short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['data after a version-00 value', `${VALID}-extra`],
    ['a missing dash', `00${TRACE_ID}-${SPAN_ID}-01x`],
    ['non-hex flags', `00-${TRACE_ID}-${SPAN_ID}-zz`],
    ['not text', 42],
    ['nothing', undefined],
    ['an empty string', ''],
  ])('ignores %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeNull();
    expect(checkTrace(value, 'vendor=1')).toBeNull();
  });

  it('reads a higher version for the fields version 00 defines, and hands it on as version 00', () => {
    expect(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-01-future-field`)).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, flags: 1 });
    expect(checkTrace(`01-${TRACE_ID}-${SPAN_ID}-01`, undefined)?.traceparent).toBe(VALID);
    expect(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-01x`)).toBeNull();
  });

  it('starts new traces with random, valid, sampled ids', () => {
    const made = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const traceparent = newTraceparent();
      const parsed = parseTraceparent(traceparent);
      expect(parsed, traceparent).not.toBeNull();
      expect(parsed!.flags).toBe(1);
      made.add(parsed!.traceId);
    }
    expect(made.size).toBe(500);
    expect(randomTraceId()).toMatch(/^[0-9a-f]{32}$/);
    expect(randomSpanId()).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('W3C tracestate', () => {
  it.each(['vendor=value', 'a=1,b=2', ' a=1 ,\tb=2 ', 'tenant@system=x', 'a=1,,b=2', 'k=v with spaces'])('accepts %j', (value) => {
    expect(isValidTracestate(value)).toBe(true);
  });

  it.each([
    ['no key', '=1'],
    ['an uppercase key', 'Vendor=1'],
    ['no "="', 'vendor'],
    ['a duplicate key', 'a=1,a=2'],
    ['a control character in a value', 'a=1\u0001'],
    ['a space inside a key', 'a b=1'],
    ['a comma in a value', 'a=1=2'],
    ['33 members', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')],
    ['only commas', ',,'],
  ])('refuses %s', (_what, value) => {
    expect(isValidTracestate(value)).toBe(false);
  });

  it('keeps a valid tracestate with its traceparent and drops an invalid one alone', () => {
    expect(checkTrace(VALID, 'vendor=1')).toEqual({ traceparent: VALID, tracestate: 'vendor=1' });
    expect(checkTrace(VALID, 'Not Valid')).toEqual({ traceparent: VALID, tracestate: null });
    expect(checkTrace(VALID, undefined)).toEqual({ traceparent: VALID, tracestate: null });
  });
});

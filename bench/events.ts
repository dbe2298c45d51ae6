import { randomUUID } from 'node:crypto';
import type { GatewayEvent } from '../src/events/event.js';

/** Events as the benchmarks publish them: one shape, a realistic body, `keys` keys in turn. */
export function benchEvents(topic: string, n: number, keys = n): GatewayEvent[] {
  const time = new Date();
  return Array.from({ length: n }, (_, i) => {
    const id = randomUUID();
    return {
      id,
      source: 'bench',
      type: 'order.created',
      topic,
      subject: null,
      time,
      dataContentType: 'application/json',
      data: { orderId: i, total: 42.5, lines: [{ sku: 'A-1', qty: 2 }], note: 'x'.repeat(120) },
      key: `order-${i % keys}`,
      correlationId: id,
      causationId: null,
      dataSchema: null,
      traceparent: null,
      tracestate: null,
      extensions: null,
    };
  });
}

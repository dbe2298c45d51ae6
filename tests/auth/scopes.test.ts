import { describe, expect, it } from 'vitest';
import { allows, grantOf, target } from '../../src/auth/scopes.js';

describe('scopes', () => {
  it('matches patterns against <topic>.<type>, * standing for any characters', () => {
    const grant = grantOf(['publish:orders.*', 'publish:payments.payment.captured', 'subscribe:*']);
    expect(allows(grant, 'publish', [target('orders', 'order.created')])).toBe(true);
    expect(allows(grant, 'publish', [target('payments', 'payment.captured')])).toBe(true);
    expect(allows(grant, 'publish', [target('payments', 'payment.refunded')])).toBe(false);
    // orders.* is the topic orders, not every topic that starts with "orders".
    expect(allows(grant, 'publish', [target('orders-eu', 'order.created')])).toBe(false);
    expect(allows(grant, 'subscribe', [target('anything')])).toBe(true);
    expect(grant.admin).toBe(false);
  });

  it('needs the whole topic (<topic>.*) to subscribe without naming types', () => {
    const typed = grantOf(['subscribe:orders.order.created']);
    expect(allows(typed, 'subscribe', [target('orders', 'order.created')])).toBe(true);
    expect(allows(typed, 'subscribe', [target('orders')])).toBe(false);
    expect(allows(grantOf(['subscribe:orders.*']), 'subscribe', [target('orders')])).toBe(true);
  });

  it('requires every target of a batch', () => {
    const grant = grantOf(['publish:orders.*']);
    expect(allows(grant, 'publish', [target('orders', 'a'), target('orders', 'b')])).toBe(true);
    expect(allows(grant, 'publish', [target('orders', 'a'), target('billing', 'b')])).toBe(false);
  });

  it('keeps publish and subscribe apart, and knows admin', () => {
    const grant = grantOf(['subscribe:orders.*', 'admin']);
    expect(allows(grant, 'publish', [target('orders', 'a')])).toBe(false);
    expect(grant.admin).toBe(true);
  });

  it('treats regular-expression characters in patterns literally', () => {
    expect(allows(grantOf(['publish:a+b.*']), 'publish', ['aab.x'])).toBe(false);
    expect(allows(grantOf(['publish:a+b.*']), 'publish', ['a+b.x'])).toBe(true);
  });
});

import { describe, expect, it, vi } from 'vitest';
import { BoundedQueue } from '../../src/util/bounded-queue.js';
import { EventBus } from '../../src/util/event-bus.js';

class TooSlow extends Error {}

function failing(items: number, bytes = Infinity, onEnd = () => {}) {
  return new BoundedQueue<string>({ items, bytes, sizeOf: (s) => s.length, overflow: () => new TooSlow('too slow'), onEnd });
}

async function drain<T>(queue: AsyncIterator<T>): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const step = await queue.next();
    if (step.done) return out;
    out.push(step.value);
  }
}

describe('bounded queue', () => {
  it('delivers pushed values in order, and hands one straight to a waiting reader', async () => {
    const queue = failing(2);
    const waiting = queue.next();
    expect(queue.push('a')).toBe('accepted');
    expect(await waiting).toEqual({ value: 'a', done: false });
    queue.push('b');
    queue.push('c');
    expect((await queue.next()).value).toBe('b');
    expect((await queue.next()).value).toBe('c');
  });

  it('does not count a value handed to a waiting reader against the bounds', async () => {
    const sizeOf = vi.fn((s: string) => s.length);
    const queue = new BoundedQueue<string>({ items: 1, bytes: 1, sizeOf, overflow: () => new TooSlow() });
    const waiting = queue.next();
    expect(queue.push('longer than one byte')).toBe('accepted');
    expect((await waiting).value).toBe('longer than one byte');
    expect(sizeOf).not.toHaveBeenCalled();
  });

  it('fails past the bound on count, dropping what waits: the reader gets the error at once, once, then done', async () => {
    const onEnd = vi.fn();
    const queue = failing(2, Infinity, onEnd);
    expect(queue.push('a')).toBe('accepted');
    expect(queue.push('b')).toBe('accepted');
    expect(onEnd).not.toHaveBeenCalled();
    expect(queue.push('c')).toBe('overflow');
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(queue.ended).toBe(true);
    expect(queue.push('d')).toBe('ended');
    await expect(queue.next()).rejects.toBeInstanceOf(TooSlow);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it('fails past the bound on bytes, and frees the bytes of what was read', async () => {
    const queue = failing(100, 5);
    queue.push('abc');
    queue.push('de');
    expect((await queue.next()).value).toBe('abc');
    // 'de' waits (2 bytes): 3 more fit, 4 do not.
    expect(queue.push('fgh')).toBe('accepted');
    expect(queue.push('i')).toBe('overflow');
    await expect(queue.next()).rejects.toBeInstanceOf(TooSlow);
  });

  it('refuses a value past its bounds and carries on, by default', async () => {
    const queue = new BoundedQueue<number>({ items: 1 });
    expect(queue.push(1)).toBe('accepted');
    expect(queue.push(2)).toBe('overflow');
    expect(queue.ended).toBe(false);
    expect((await queue.next()).value).toBe(1);
    expect(queue.push(3)).toBe('accepted');
    expect((await queue.next()).value).toBe(3);
  });

  it('drops the oldest past its bounds when told to', async () => {
    const queue = new BoundedQueue<number>({ items: 2, overflow: 'drop-oldest' });
    for (const n of [1, 2, 3, 4]) expect(queue.push(n)).toBe('accepted');
    queue.end();
    expect(await drain(queue)).toEqual([3, 4]);
  });

  it('rejects a reader waiting when it fails, and delivers the error once', async () => {
    const queue = failing(10);
    const waiting = queue.next();
    queue.fail(new TooSlow('expired'));
    await expect(waiting).rejects.toThrow('expired');
    expect((await queue.next()).done).toBe(true);
  });

  it('delivers what waits before the error it failed with', async () => {
    const queue = failing(10);
    queue.push('a');
    queue.push('b');
    queue.fail(new TooSlow('expired'));
    queue.fail(new TooSlow('second'));
    expect((await queue.next()).value).toBe('a');
    expect((await queue.next()).value).toBe('b');
    await expect(queue.next()).rejects.toThrow('expired');
    expect((await queue.next()).done).toBe(true);
  });

  it('ends with what waits delivered first, and takes nothing after', async () => {
    const onEnd = vi.fn();
    const queue = failing(10, Infinity, onEnd);
    queue.push('a');
    queue.push('b');
    queue.end();
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(queue.push('c')).toBe('ended');
    queue.fail(new TooSlow());
    expect(await drain(queue)).toEqual(['a', 'b']);
  });

  it('ends a reader that is waiting', async () => {
    const queue = failing(10);
    const waiting = queue.next();
    queue.end();
    expect(await waiting).toEqual({ value: undefined, done: true });
  });

  it('on return while a reader waits: the reader is done, the hook runs once, later pushes are ignored', async () => {
    const onEnd = vi.fn();
    const queue = failing(10, Infinity, onEnd);
    const waiting = queue.next();
    expect(await queue.return()).toEqual({ value: undefined, done: true });
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(queue.push('late')).toBe('ended');
    await queue.return();
    queue.close();
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect((await queue.next()).done).toBe(true);
  });

  it('drops what waits, values and an error, on close', async () => {
    const queue = failing(10);
    queue.push('a');
    queue.fail(new TooSlow());
    queue.close();
    expect((await queue.next()).done).toBe(true);
  });

  it('is left by break in for await', async () => {
    const onEnd = vi.fn();
    const queue = failing(10, Infinity, onEnd);
    queue.push('a');
    queue.push('b');
    for await (const value of queue) {
      expect(value).toBe('a');
      break;
    }
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect((await queue.next()).done).toBe(true);
  });
});

describe('event bus', () => {
  it('broadcasts to each iterator what its filter wants, keeps the newest of a stalled one, and ends them all on close', async () => {
    const bus = new EventBus<number>(3);
    const all = bus.subscribe();
    const even = bus.subscribe((n) => n % 2 === 0);
    for (let n = 1; n <= 6; n++) bus.publish(n);
    expect((await all.next()).value).toBe(4);
    expect((await even.next()).value).toBe(2);
    const waiting = even.next();
    bus.close();
    bus.publish(8);
    expect((await waiting).value).toBe(4);
    expect(await drain(all)).toEqual([]);
  });
});

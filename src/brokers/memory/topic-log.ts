import { CursorExpiredError, InvalidCursorError } from '../../errors.js';
import type { GatewayEvent } from '../../events/event.js';

/**
 * What the memory broker keeps of one topic for subscribers that resume: the last `capacity`
 * events, numbered from 1 in publish order (one partition, ""). Kept from the first subscription
 * to the topic for as long as the process lives; nothing survives a restart, so a cursor from an
 * earlier process (another `epoch`) has expired.
 */
export class TopicLog {
  private readonly ring: (GatewayEvent | undefined)[];
  /** Offset of the newest event; 0 before the first. */
  private last = 0;

  constructor(
    readonly epoch: string,
    private readonly capacity: number,
  ) {
    this.ring = new Array<GatewayEvent | undefined>(Math.max(1, capacity));
  }

  get end(): number {
    return this.last;
  }

  /** Offset of the oldest event still kept. */
  get first(): number {
    return Math.max(1, this.last - this.capacity + 1);
  }

  append(event: GatewayEvent): number {
    this.last++;
    this.ring[this.last % this.ring.length] = event;
    return this.last;
  }

  /**
   * The events after `offset`, oldest first. Throws `CursorExpiredError` when some of them are no
   * longer kept, `InvalidCursorError` when `offset` is past the end.
   */
  after(offset: number): { offset: number; event: GatewayEvent }[] {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.last) {
      throw new InvalidCursorError(`cursor is past the end of the topic's log (at ${offset}, the log ends at ${this.last})`);
    }
    if (offset + 1 < this.first) {
      throw new CursorExpiredError(`the events after this cursor are no longer kept: the memory broker keeps the last ${this.capacity} events of a topic`);
    }
    const events: { offset: number; event: GatewayEvent }[] = [];
    for (let o = offset + 1; o <= this.last; o++) events.push({ offset: o, event: this.ring[o % this.ring.length]! });
    return events;
  }
}

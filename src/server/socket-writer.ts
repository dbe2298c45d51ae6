import type { WebSocket } from 'ws';

export interface SocketWriterBounds {
  /** Frames waiting for one socket before it is cut off (`SUBSCRIBER_BUFFER`). */
  readonly frames: number;
  /** Bytes waiting for one socket before it is cut off (`SUBSCRIBER_BUFFER_BYTES`). */
  readonly bytes: number;
}

/**
 * What the kernel and `ws` may hold for a socket before frames wait here instead: enough to keep
 * a reading client busy, little enough that a stalled one is noticed.
 */
const HIGH_WATER_BYTES = 64 * 1024;

/**
 * Writes one socket's frames without awaiting each write: a frame goes out at once while the
 * socket's buffered amount is below a high-water mark, else waits in a bounded queue that the
 * socket's `drain` empties. A client that stops reading fills the queue; past its bounds
 * `onOverflow` is called once and nothing more is queued. One slow socket never holds up the
 * others or the shared execution of their group.
 */
export class SocketWriter {
  private readonly queue: string[] = [];
  /** Byte length of each queued frame, beside it. */
  private readonly sizes: number[] = [];
  private queuedBytes = 0;
  private overflowed = false;
  private draining = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly bounds: SocketWriterBounds,
    private readonly onOverflow: (reason: string) => void,
  ) {}

  send(frame: string): void {
    if (this.overflowed || this.socket.readyState !== this.socket.OPEN) return;
    if (this.queue.length === 0 && this.socket.bufferedAmount < HIGH_WATER_BYTES) {
      this.socket.send(frame);
      return;
    }
    const bytes = Buffer.byteLength(frame);
    if (this.queue.length >= this.bounds.frames || this.queuedBytes + bytes > this.bounds.bytes) {
      this.overflowed = true;
      this.queue.length = 0;
      this.sizes.length = 0;
      this.queuedBytes = 0;
      this.onOverflow(`subscriber too slow: more than ${this.bounds.frames} events or ${this.bounds.bytes} bytes waiting for it`);
      return;
    }
    this.queue.push(frame);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    this.waitForDrain();
  }

  private waitForDrain(): void {
    if (this.draining) return;
    // `ws` has no drain event of its own; its underlying net socket does.
    const raw = (this.socket as unknown as { _socket?: NodeJS.EventEmitter })._socket;
    if (!raw) return;
    this.draining = true;
    raw.once('drain', () => {
      this.draining = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.socket.readyState === this.socket.OPEN && this.socket.bufferedAmount < HIGH_WATER_BYTES) {
      const frame = this.queue.shift()!;
      // Measured once, when queued.
      this.queuedBytes -= this.sizes.shift()!;
      this.socket.send(frame);
    }
    if (this.queue.length > 0) this.waitForDrain();
  }
}

import { randomFillSync } from 'node:crypto';

/** Random bytes are drawn in blocks: one syscall per 512 ids instead of one per id. */
const POOL_IDS = 512;
const pool = Buffer.alloc(10 * POOL_IDS);
let offset = pool.length;
let lastMs = 0;
let sequence = 0;

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix time in ms, then random bits, with a 12-bit
 * counter that keeps ids made in the same millisecond in order. The gateway's own event ids are
 * v7 because they sort by creation time: each new id lands at the end of the outbox's unique
 * index instead of on a random page of it, which is most of what a write costs SQLite and
 * PostgreSQL on the publish path. Still a UUID any client can store as one.
 */
export function uuidV7(now = Date.now()): string {
  if (offset + 10 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  if (now > lastMs) {
    lastMs = now;
    sequence = pool.readUInt16BE(offset) & 0x7ff; // start low in the 12 bits, leaving room to count up
  } else {
    sequence++;
    if (sequence > 0xfff) {
      // More than ~2,000 ids in one millisecond: borrow the next millisecond to stay ordered.
      lastMs++;
      sequence = 0;
    }
  }
  const bytes = Buffer.allocUnsafe(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  pool.copy(bytes, 8, offset + 2, offset + 10);
  offset += 10;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

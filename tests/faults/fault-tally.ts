import type { WebhookRecorder } from '../helpers/webhook-recorder.js';

export interface FaultTally {
  sent: number;
  received: number;
  unique: number;
  lost: number;
}

/**
 * Committed ids against what the webhooks accepted (all of them together); `lostIds` are the
 * committed ids none of them accepted.
 */
export function tally(committed: readonly string[], ...recorders: WebhookRecorder[]): FaultTally & { lostIds: string[] } {
  const unique = new Set(recorders.flatMap((r) => [...r.accepted.keys()]));
  const lostIds = committed.filter((id) => !unique.has(id));
  const received = recorders.reduce((sum, r) => sum + r.received, 0);
  return { sent: committed.length, received, unique: unique.size, lost: lostIds.length, lostIds };
}

/** Prints `fault <scenario> [<broker>]: sent N, received N, unique N, lost N (extra)`. */
export function reportFault(scenario: string, broker: string, counts: FaultTally, extra?: string): void {
  const line = `fault ${scenario} [${broker}]: sent ${counts.sent}, received ${counts.received}, unique ${counts.unique}, lost ${counts.lost}`;
  console.log(extra ? `${line} (${extra})` : line);
}

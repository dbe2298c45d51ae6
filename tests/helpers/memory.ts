import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
// A context created after the flag is set gets the `gc` global, whatever flags the worker started with.
const collect = runInNewContext('gc') as () => void;

/**
 * Bytes held in ArrayBuffers (socket frames, encoded event bodies) after a full collection, so
 * that garbage not yet collected does not count as memory the process holds.
 */
export function retainedArrayBuffers(): number {
  collect();
  collect();
  return process.memoryUsage().arrayBuffers;
}

import { InvalidInputError } from '../errors.js';

/** Row ids are integers exposed as `ID`; anything else is a client error, not a crash. */
export function parseId(id: string | number): number {
  const n = typeof id === 'number' ? id : Number(id);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidInputError(`"${id}" is not a valid id`);
  return n;
}

/** Where the harness says what it does: a line per step, e.g. `kafka: started Kafka 4.4.0, pid 123`. */
export type Log = (line: string) => void;

export const printLog: Log = (line) => process.stdout.write(`${line}\n`);
export const silentLog: Log = () => undefined;

/** A broker could not be brought up, stopped or found; the message says which and why. */
export class HarnessError extends Error {
  override readonly name = 'HarnessError';
}

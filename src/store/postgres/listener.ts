import postgres from 'postgres';
import { clientOptions, type PostgresOptions } from './database.js';

export interface ChannelListener {
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
}

const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 10_000;

/**
 * Keeps one connection LISTENing on `channel` for as long as it is open, calling `onNotify` with
 * each payload. A lost connection is listened on again, with backoff while the server stays away;
 * notifications sent meanwhile are lost, so `onResume` is called once LISTEN holds again (callers
 * look at the table then, as after a notification).
 *
 * Not postgres.js's `sql.listen`: that one retries a server that accepts and at once refuses the
 * connection (too many connections, still starting up) every few milliseconds, adding to the
 * load that made it refuse.
 */
export function listenOn(options: PostgresOptions, channel: string, onNotify: (payload: string) => void, onResume: () => void): ChannelListener {
  let closed = false;
  let listening = false;
  let listenedBefore = false;
  let retryMs = FIRST_RETRY_MS;
  let timer: NodeJS.Timeout | undefined;
  const client = postgres(options.url, {
    ...clientOptions(options),
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    fetch_types: false,
    // Not in postgres.js's option types, though its connections call it (`sql.listen` uses it).
    ...({ onnotify: (name: string, payload: string) => name === channel && onNotify(payload) } as object),
    onclose: () => {
      if (!listening || closed) return;
      listening = false;
      retryMs = FIRST_RETRY_MS;
      schedule(0);
    },
  });

  const schedule = (ms: number) => {
    timer = setTimeout(attempt, ms);
    timer.unref();
  };
  function attempt(): void {
    timer = undefined;
    if (closed) return;
    client.unsafe(`listen "${channel.replace(/"/g, '""')}"`).then(
      () => {
        listening = true;
        retryMs = FIRST_RETRY_MS;
        if (listenedBefore) onResume();
        listenedBefore = true;
      },
      () => {
        if (closed) return;
        schedule(retryMs);
        retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
      },
    );
  }
  attempt();

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await client.end({ timeout: 0 });
    },
  };
}

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './events.js';

/** How the receiver answers one delivery: 2xx after `delayMs`, or `status` to make it fail. */
export type WebhookAnswer = { delayMs?: number; status?: number };

/**
 * The webhook a durable consumer calls: an HTTP server recording each event id it accepted.
 * `answer` decides per call (delay, failure); `hold()` keeps every new call open until `release()`.
 */
export class WebhookRecorder {
  /** Accepted (2xx) deliveries per event id, counted when the request arrives. */
  readonly accepted = new Map<string, number>();
  /** Deliveries refused on purpose (`answer` gave a status), per event id. */
  readonly refused = new Map<string, number>();
  /** Ids whose 2xx answer was completely written back to the gateway. */
  readonly finished = new Set<string>();
  /** Calls received but not answered yet. */
  inFlight = 0;
  /** Ids of the calls received but not answered yet. */
  readonly pending = new Set<string>();
  answer: (eventId: string, call: number) => WebhookAnswer = () => ({});
  /** Every call as it arrived (headers and body), when started with `keepRequests`. */
  readonly requests: { readonly eventId: string; readonly headers: IncomingHttpHeaders; readonly body: string }[] = [];
  private held: (() => void)[] | undefined;
  private readonly calls = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly keepRequests: boolean,
  ) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.receive(req, res));
  }

  static async start(options: { keepRequests?: boolean } = {}): Promise<WebhookRecorder> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new WebhookRecorder(server, `http://127.0.0.1:${port}/events`, options.keepRequests ?? false);
  }

  /** Every accepted delivery, duplicates included. */
  get received(): number {
    let total = 0;
    for (const n of this.accepted.values()) total += n;
    return total;
  }

  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const go of waiting) go();
  }

  /** Waits until every id in `ids` was accepted at least once. */
  async waitForAll(ids: Iterable<string>, timeoutMs: number, what = 'every committed event at the webhook'): Promise<void> {
    const wanted = [...ids];
    try {
      await waitFor(() => wanted.every((id) => this.accepted.has(id)), timeoutMs, what);
    } catch (error) {
      const missing = wanted.filter((id) => !this.accepted.has(id)).length;
      throw new Error(`${(error as Error).message} (${missing} of ${wanted.length} still missing)`);
    }
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let id: string;
    try {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      id = String((JSON.parse(body) as { id: unknown }).id);
      if (this.keepRequests) this.requests.push({ eventId: id, headers: req.headers, body });
    } catch {
      // A call cut off by a killed gateway, or not a CloudEvent: nothing to record.
      if (!res.destroyed) res.writeHead(400).end();
      return;
    }
    const call = (this.calls.get(id) ?? 0) + 1;
    this.calls.set(id, call);
    const { delayMs = 0, status = 200 } = this.answer(id, call);
    const tally = status < 300 ? this.accepted : this.refused;
    tally.set(id, (tally.get(id) ?? 0) + 1);
    this.inFlight++;
    this.pending.add(id);
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    this.inFlight--;
    this.pending.delete(id);
    res.once('finish', () => status < 300 && this.finished.add(id));
    res.writeHead(status).end();
  }
}

import { createHmac } from 'node:crypto';

/** `whsec_` and the key in base64: the secret format of Standard Webhooks. */
export const WEBHOOK_SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/**
 * Signs webhook calls as Standard Webhooks (https://www.standardwebhooks.com) asks, so a receiver
 * can tell a real delivery from a forged or replayed one with any of its libraries:
 *
 * - `webhook-id`: the event id, the same on every retry and replay (receivers dedupe on it);
 * - `webhook-timestamp`: seconds since the epoch at this attempt (receivers refuse old ones);
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret,
 *   space-separated, so a receiver can rotate its secret without missing a delivery.
 */
export class WebhookSigner {
  readonly #keys: readonly Buffer[];

  /** @param secrets `whsec_…` secrets; during a rotation, the new one and the old one. */
  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new TypeError('at least one webhook secret');
    this.#keys = secrets.map((secret) => {
      if (!WEBHOOK_SECRET_PATTERN.test(secret)) throw new TypeError('a webhook secret is whsec_ followed by base64');
      return Buffer.from(secret.slice('whsec_'.length), 'base64');
    });
  }

  /** @param body exactly the bytes sent */
  headers(id: string, body: string | Buffer, nowMs = Date.now()): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
    const timestamp = String(Math.floor(nowMs / 1000));
    const prefix = `${id}.${timestamp}.`;
    const signature = this.#keys.map((key) => `v1,${createHmac('sha256', key).update(prefix).update(body).digest('base64')}`).join(' ');
    return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature };
  }
}

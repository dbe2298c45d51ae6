import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/brokers/redact-url.js';

describe('redactUrl', () => {
  it('masks a password but keeps the user', () => {
    expect(redactUrl('amqp://guest:secret@127.0.0.1:5672/vhost')).toBe('amqp://guest:***@127.0.0.1:5672/vhost');
  });
  it('masks a lone username, which is a token', () => {
    expect(redactUrl('nats://s3cr3t-token@127.0.0.1:4222')).toBe('nats://***@127.0.0.1:4222');
  });
  it('leaves a URL without credentials alone and never echoes an unparsable one', () => {
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
    expect(redactUrl('not a url with pass:word', 'NATS_URL')).toBe('(unparsable NATS_URL)');
  });
});

import { jetstream } from '@nats-io/jetstream';
import { connect as connectNats, headers as natsHeaders } from '@nats-io/transport-node';
import { connect as connectAmqp } from 'amqplib';
import { plainKafka } from '../helpers/kafka.js';
import type { ForeignMessage } from './target.js';

/*
 * Other applications' producers, each with the broker's plain client and nothing of the gateway:
 * they write where the README's "Brokers" section says the gateway reads a topic's events.
 */

const CLOUDEVENTS_JSON = 'application/cloudevents+json';

/** amqplib on a confirm channel: the topic exchange, routing key `<topic>.<type>`. */
export async function publishWithAmqplib(url: string, exchange: string, message: ForeignMessage): Promise<void> {
  const connection = await connectAmqp(url);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(exchange, `${message.topic}.${message.type}`, Buffer.from(message.body), {
      persistent: true,
      contentType: CLOUDEVENTS_JSON,
      headers: message.headers,
    });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** kafkajs with `acks=-1`: the Kafka topic named as the gateway topic. */
export async function publishWithKafkajs(message: ForeignMessage): Promise<void> {
  const producer = plainKafka().producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({
      topic: message.topic,
      acks: -1,
      messages: [{ key: message.key ?? null, value: message.body, headers: { 'content-type': CLOUDEVENTS_JSON, ...message.headers } }],
    });
  } finally {
    await producer.disconnect();
  }
}

/**
 * nats.js on subject `events.<topic>.<type>`: a JetStream publish (resolving on the stream's ack)
 * or, for a server without JetStream, a core publish confirmed by a flush.
 */
export async function publishWithNats(url: string, mode: 'jetstream' | 'core', message: ForeignMessage): Promise<void> {
  const nc = await connectNats({ servers: url });
  try {
    const subject = `events.${message.topic}.${message.type}`;
    const headers = natsHeaders();
    headers.set('content-type', CLOUDEVENTS_JSON);
    for (const [name, value] of Object.entries(message.headers)) headers.set(name, value);
    if (mode === 'jetstream') await jetstream(nc).publish(subject, message.body, { headers });
    else {
      nc.publish(subject, message.body, { headers });
      await nc.flush();
    }
  } finally {
    await nc.close();
  }
}

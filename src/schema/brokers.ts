import type { CircuitState } from '../relay/circuit-breaker.js';
import { builder } from './builder.js';

interface BrokerStatusShape {
  kind: string;
  connected: boolean;
  lastError: string | null;
  circuit: CircuitState;
  pendingEvents: number;
}

const CircuitStateRef = builder.enumType('CircuitState', {
  values: {
    CLOSED: { description: 'Publishing normally.' },
    OPEN: { description: 'Publishes failed repeatedly; the relay waits before trying again.' },
    HALF_OPEN: { description: 'Trying one small batch to see whether the broker is back.' },
  } satisfies Record<CircuitState, unknown>,
});

const BrokerStatus = builder.objectRef<BrokerStatusShape>('BrokerStatus').implement({
  fields: (t) => ({
    kind: t.exposeString('kind', { description: '`memory`, `rabbitmq`, `kafka` or `nats`.' }),
    connected: t.exposeBoolean('connected'),
    lastError: t.exposeString('lastError', { nullable: true }),
    circuit: t.expose('circuit', { type: CircuitStateRef, description: 'The relay’s circuit breaker for this broker.' }),
    pendingEvents: t.exposeInt('pendingEvents', { description: 'Outbox entries waiting to be published.' }),
  }),
});

builder.queryFields((t) => ({
  brokers: t.field({
    authScopes: { admin: true },
    type: [BrokerStatus],
    resolve: async (_, __, ctx) => {
      const { broker, relay, outbox } = ctx.services;
      const status = broker.status();
      return [
        {
          kind: broker.kind,
          connected: status.connected,
          lastError: status.lastError ?? relay.breaker.lastReason,
          circuit: relay.breaker.state,
          pendingEvents: await outbox.count('PENDING'),
        },
      ];
    },
  }),
}));

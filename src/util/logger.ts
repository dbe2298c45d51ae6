import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** JSON logs on stdout; `LOG_LEVEL=silent` turns them off (tests). */
export function createLogger(level: LevelWithSilent): Logger {
  return pino({ level, base: { service: 'event-gateway' } });
}

export const silentLogger: Logger = pino({ level: 'silent' });

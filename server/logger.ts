/** Structured logs (pino, JSON lines on stdout), one child logger per request. */
import type { IncomingMessage } from 'node:http';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'tusgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  });
}

/** The request logger of a Node request, for code that sees only the request (tus hooks). */
const requestLoggers = new WeakMap<IncomingMessage, Logger>();

export function bindRequestLogger(req: IncomingMessage, log: Logger): void {
  requestLoggers.set(req, log);
}

export function requestLogger(req: IncomingMessage | undefined, fallback: Logger): Logger {
  return (req && requestLoggers.get(req)) ?? fallback;
}

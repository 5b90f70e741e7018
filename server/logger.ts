/**
 * Structured logs (pino), one child logger per request: JSON lines on stdout, or, when
 * stdout is a terminal, the same lines made readable by pino-pretty (synchronously, in
 * this process: nothing is lost on exit, and no worker thread).
 */
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string): Logger {
  const options = {
    level,
    base: { service: 'tusgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  };
  // not a terminal: pino's own destination on fd 1, as ever (the tests read these JSON lines from a pipe)
  if (!process.stdout.isTTY) return pino(options);
  return pino(options, prettyStream(process.stdout));
}

/** pino-pretty, loaded only for a terminal (a server under a supervisor or a pipe never pays for it). */
function prettyStream(stream: NodeJS.WriteStream) {
  const { build } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return build({
    destination: stream,
    sync: true,
    colorize: stream.hasColors?.() ?? false,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    singleLine: true,
    // the start-up line's configuration: one `KEY=value` list instead of a wall of JSON
    customPrettifiers: {
      config: (value) =>
        typeof value === 'object' && value !== null
          ? Object.entries(value)
              .filter(([key, v]) => /^[A-Z]/.test(key) && v !== undefined)
              .map(([key, v]) => `${key}=${Array.isArray(v) ? v.join(',') : String(v)}`)
              .join(' ')
          : String(value),
    },
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

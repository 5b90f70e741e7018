/**
 * Requests Node's HTTP parser rejects before the app sees them (a malformed request line,
 * headers over Node's limit, headers that never end): answered like every other refusal,
 * with a status, a JSON body and a log line, instead of Node's bare "400 Bad Request".
 * As Node does, a response is written only while nothing has been written on the socket;
 * the socket is then closed (lingering, see lingering-close.ts).
 */
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Refusal } from '../hooks/errors.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

type ParserError = Error & { code?: string };

function refusalFor(error: ParserError, headersTimeoutMs: number): Refusal {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return new Refusal('E_HEADERS_TOO_LARGE', `The request headers are over ${maxHeaderSize} bytes (Node's --max-http-header-size).`);
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new Refusal('E_REQUEST_TIMEOUT', `The request headers did not arrive within ${headersTimeoutMs} ms (HEADERS_TIMEOUT_MS).`);
  }
  return new Refusal('E_BAD_REQUEST', `The request is not well-formed HTTP/1.1 (${error.code ?? 'parse error'}).`);
}

export function answerClientError(log: Logger, metrics: Metrics, headersTimeoutMs: number): (error: ParserError, socket: Duplex) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || !(socket instanceof Socket) || !socket.writable || socket.bytesWritten > 0) {
      socket.destroy();
      return;
    }
    const refusal = refusalFor(error, headersTimeoutMs);
    metrics.refusals.inc({ code: refusal.code, stage: 'protocol' });
    log.warn({ code: refusal.code, status: refusal.status_code, parserError: error.code, remote: socket.remoteAddress }, 'malformed request');
    const body = Buffer.from(refusal.body);
    socket.write(
      `HTTP/1.1 ${refusal.status_code} ${STATUS_CODES[refusal.status_code] ?? ''}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    );
    socket.write(body);
    socket.destroySoon();
  };
}

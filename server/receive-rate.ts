/**
 * A minimum receive rate for request bodies (a slow-loris PATCH would otherwise hold its
 * connection and the upload's lock for ever: the idle timeout only measures silence).
 * Every RECEIVE_RATE_WINDOW_MS, a body still arriving must have brought at least
 * MIN_RECEIVE_BYTES_PER_S on average over the window, or its connection is closed, as
 * nginx's body timeouts and tusd's network timeout do. What arrived stays: the upload is
 * resumable from the offset HEAD reports.
 *
 * A window in which the server itself did not read (bytes wait unread in the request's
 * buffer, e.g. while it waits for the upload's lock) does not count against the client.
 */
import type { IncomingMessage } from 'node:http';

export interface ReceiveRate {
  minBytesPerSecond: number;
  windowMs: number;
  /** Told before the connection is closed. */
  onTooSlow: (received: number) => void;
}

export function watchReceiveRate(req: IncomingMessage, { minBytesPerSecond, windowMs, onTooSlow }: ReceiveRate): void {
  if (minBytesPerSecond === 0 || req.complete) return;
  const socket = req.socket;
  const needed = (minBytesPerSecond * windowMs) / 1000;
  let mark = socket.bytesRead;
  const timer = setInterval(() => {
    if (req.complete || socket.destroyed) return stop();
    const received = socket.bytesRead - mark;
    mark = socket.bytesRead;
    if (received >= needed || req.readableLength > 0 || req.isPaused()) return;
    stop();
    onTooSlow(received);
    socket.destroy();
  }, windowMs);
  timer.unref();
  const stop = () => clearInterval(timer);
  req.once('end', stop);
  req.once('close', stop);
}

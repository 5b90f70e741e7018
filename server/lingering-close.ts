/**
 * Lingering close for refused uploads.
 *
 * When tusgate refuses an upload mid-body it answers at once with `Connection: close`.
 * Node then ends the socket and destroys it as soon as the response is flushed; with the
 * rest of the body still arriving, the kernel answers with a TCP reset, and a reset can
 * make the client drop the response it has not read yet (it sees ECONNRESET instead of
 * the 415/422). Like nginx's lingering_close, the socket is instead half-closed after the
 * response and kept for a short while before it is destroyed; unlike nginx, it stops
 * reading meanwhile, so the rest of a large body stays unread.
 */
import type { Socket } from 'node:net';

export function installLingeringClose(socket: Socket, lingerMs: number): void {
  socket.destroySoon = function lingeringDestroy(this: Socket): void {
    this.pause();
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), lingerMs);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

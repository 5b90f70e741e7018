/**
 * The request body on its way to the staging store, under a lease that can be lost.
 * - Every chunk: the lease's local validity (a cheap, synchronous check).
 * - Before a chunk that crosses a multiple of `checkEvery` bytes of the upload, and
 *   before the end (when S3 staging uploads its last part): the lease is checked against
 *   the store that decides (Redis), so a holder that lost its lock without knowing it
 *   writes nothing more. `checkEvery` divides the S3 part size, so no part is handed on
 *   unchecked.
 * - When the lease reports its loss, the stream fails at once.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { Fence, Lease } from './leases.ts';

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(readonly key: string) {
    super(`the lock ${key} was lost; this request stops before writing another byte`);
  }
}

export function fencedStream(lease: Lease, holds: (fence: Fence) => Promise<boolean>, offset: number, checkEvery: number): Transform {
  let position = offset;
  const lost = () => new LeaseLostError(lease.key);
  const verify = (callback: (error?: Error | null) => void) => {
    holds(lease).then(
      (ours) => callback(ours && lease.valid() ? null : lost()),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  };
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (!lease.valid()) return callback(lost());
      const before = position;
      position += chunk.length;
      if (Math.floor(before / checkEvery) === Math.floor(position / checkEvery)) return callback(null, chunk);
      verify((error) => (error ? callback(error) : callback(null, chunk)));
    },
    flush(callback: TransformCallback) {
      verify(callback);
    },
  });
  const onLost = () => stream.destroy(lost());
  if (lease.lost.aborted) onLost();
  lease.lost.addEventListener('abort', onLost, { once: true });
  stream.once('close', () => lease.lost.removeEventListener('abort', onLost));
  return stream;
}

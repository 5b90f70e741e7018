/**
 * Frees an ArrayBuffer's memory at once, by detaching it (`ArrayBuffer.prototype.transfer(0)`),
 * instead of when V8 next collects the tiny object that holds it.
 *
 * Node 22+ has `transfer`. Node 20's V8 (11.3) has it behind `--harmony-rab-gsab-transfer`,
 * which only installs it in contexts made after the flag is set: so there it is taken from a
 * new `vm` context (it works on any realm's ArrayBuffer). Where neither is there, nothing is
 * freed early and V8 frees the buffer when it collects, as it would anyway.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Transfer = (this: ArrayBuffer, length: number) => ArrayBuffer;

function isTransfer(value: unknown): value is Transfer {
  return typeof value === 'function';
}

function findTransfer(): Transfer | undefined {
  const native: unknown = Reflect.get(ArrayBuffer.prototype, 'transfer'); // ES2024, not in this project's lib
  if (isTransfer(native)) return native;
  if (!process.versions.v8.startsWith('11.')) return undefined;
  try {
    v8.setFlagsFromString('--harmony-rab-gsab-transfer');
    const fromContext: unknown = vm.runInNewContext('ArrayBuffer.prototype.transfer');
    return isTransfer(fromContext) ? fromContext : undefined;
  } catch {
    return undefined;
  }
}

const transfer = findTransfer();

/** True when `freeArrayBuffer` frees memory on this runtime (for the start-up log and the tests). */
export const canFreeEarly = transfer !== undefined;

/** Detaches `buffer`: every view on it reads as empty from now on, and its memory is freed. */
export function freeArrayBuffer(buffer: ArrayBuffer): void {
  transfer?.call(buffer, 0);
}

/**
 * Frees the memory of a Buffer that nothing else refers to, when it is the whole of its
 * ArrayBuffer (Node's pooled small Buffers share one, and are left to the collector).
 */
export function freeBuffer(chunk: Buffer): void {
  const { buffer } = chunk;
  if (buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength) freeArrayBuffer(buffer);
}

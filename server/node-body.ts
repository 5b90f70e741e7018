/**
 * Request bodies go from the socket to the store as Node streams, without the web-stream
 * round trip of @tus/server 2 (srvx's `Readable.toWeb(req)`, then @tus/server's
 * `Readable.fromWeb`). That round trip copies every chunk on Node 20
 * (`new Uint8Array(chunk)` in `newReadableStreamFromStreamReadable`) and allocates promises
 * and read requests per chunk; with a small young generation those copies outlive their
 * scavenges, pile up as external memory in the old generation and keep a mark-compact
 * running every few megabytes: the slow mode of docs/benchmarks.md.
 *
 * How: a PATCH or POST reaches @tus/server as a `NodeBodyRequest`, whose `body` is a
 * placeholder that remembers the IncomingMessage. The PATCH and POST handlers' writeToStore
 * is replaced (the handlers are not exported, so on the instances) by `writeNodeBody`, which
 * does what @tus/server's does - a proxy so that a failed write never destroys the request
 * (the client still gets its response), the body limit, abort on cancel - from the
 * IncomingMessage itself, with the limiter as the proxy. The placeholder fails loudly if
 * anything reads it: if a new @tus/server stopped calling writeToStore, every upload would
 * fail in the tests rather than silently take the slow path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Server } from '@tus/server';
import { ERRORS, type CancellationContext, type DataStore, type Upload } from '@tus/utils';
import { NodeRequest } from 'srvx/node';

const bodies = new WeakMap<ReadableStream, IncomingMessage>();

export class BodyReadThroughWebStreamError extends Error {
  override name = 'BodyReadThroughWebStreamError';
  constructor() {
    super('a request body was read through its web stream: @tus/server no longer calls writeToStore (server/node-body.ts)');
  }
}

function placeholder(req: IncomingMessage): ReadableStream {
  // highWaterMark 0: pulled only by a read (the default, 1, pulls at once, building an Error per request)
  const stream = new ReadableStream(
    {
      pull() {
        throw new BodyReadThroughWebStreamError();
      },
    },
    { highWaterMark: 0 },
  );
  bodies.set(stream, req);
  return stream;
}

/** A srvx request whose body stays the Node stream it is (see the top of this file). */
export class NodeBodyRequest extends NodeRequest {
  readonly #req: IncomingMessage;
  #body: ReadableStream | null | undefined;

  constructor(req: IncomingMessage, res: ServerResponse) {
    super({ req, res });
    this.#req = req;
  }

  override get body(): ReadableStream | null {
    if (this.#body === undefined) this.#body = this.method === 'GET' || this.method === 'HEAD' ? null : placeholder(this.#req);
    return this.#body;
  }
}

/**
 * @tus/utils' StreamLimiter (the body limit, failing with the same 413 error), without its
 * buffers: StreamLimiter is a Transform with the default high-water marks, which hold up
 * to 64 KiB on each side per request on Node 22+ (16 KiB on Node 20) on top of the
 * IncomingMessage's own. This one passes one chunk at a time: with 100 uploads arriving at
 * once, that was about 25 MB less RSS on Node 24 (measured while they arrived).
 */
export class BodyLimiter extends Transform {
  private received = 0;

  constructor(private readonly maxSize: number) {
    super({ writableHighWaterMark: 0, readableHighWaterMark: 0 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received <= this.maxSize) return callback(null, chunk);
    const { status_code, body } = ERRORS.ERR_MAX_SIZE_EXCEEDED;
    callback(Object.assign(new Error(body), { status_code, body })); // StreamLimiter's MaxFileExceededError
  }
}

/**
 * @tus/server's writeToStore (handlers/BaseHandler.js, 2.4.5) with the IncomingMessage as
 * the source; any other body (none, or a real web stream) is read as an async iterable.
 */
async function writeNodeBody(store: DataStore, body: ReadableStream | null, upload: Upload, maxFileSize: number, context: CancellationContext): Promise<number> {
  if (context.signal.aborted) throw ERRORS.ABORTED;
  const source: Readable = (body && bodies.get(body)) ?? (body ? Readable.from(body) : Readable.from([]));
  // The limiter is also the proxy: the request is piped into it, not put in the pipeline, so
  // that a failed write never destroys the request (the client still gets its response).
  // One stage fewer than a PassThrough before it: each holds a 64 KiB chunk per upload.
  const limiter = new BodyLimiter(maxFileSize);
  let sourceError: unknown;
  const onSourceError = (error: Error) => {
    sourceError = error;
    source.unpipe(limiter);
    if (!context.signal.aborted) limiter.destroy(error);
  };
  source.on('error', onSourceError);
  const onAbort = () => {
    source.unpipe(limiter);
    if (!limiter.destroyed) limiter.end();
  };
  context.signal.addEventListener('abort', onAbort, { once: true });
  try {
    let offset = upload.offset;
    await pipeline(source.pipe(limiter), async (limited: AsyncIterable<Buffer>) => {
      // pipeline hands the function the stream itself (the limiter), a Readable
      if (!(limited instanceof Readable)) throw new TypeError('pipeline passed no stream');
      offset = await store.write(limited, upload.id, upload.offset);
    });
    return offset;
  } catch (error) {
    source.unpipe(limiter);
    const aborted = (sourceError !== undefined && error === sourceError) || (error instanceof Error && error.name === 'AbortError');
    throw aborted ? ERRORS.ABORTED : error;
  } finally {
    source.off('error', onSourceError);
    context.signal.removeEventListener('abort', onAbort);
  }
}

/** Makes the PATCH and POST handlers of `server` write Node bodies to `store` directly. */
export function streamNodeBodies(server: Server, store: DataStore): void {
  for (const handler of [server.handlers.PATCH, server.handlers.POST]) {
    if (!('writeToStore' in handler)) throw new Error('@tus/server handlers have no writeToStore to replace (server/node-body.ts)');
    Object.defineProperty(handler, 'writeToStore', {
      value: (body: ReadableStream | null, upload: Upload, maxFileSize: number, context: CancellationContext) => writeNodeBody(store, body, upload, maxFileSize, context),
    });
  }
}

/**
 * What the Koa layer learned about a request (who sends it, the upload's state it read),
 * for the code that sees only the request: @tus/server's hooks and options.
 */
import type { IncomingMessage } from 'node:http';
import type { UploadState } from '../storage/upload-state.ts';
import type { Identity } from './auth/index.ts';

export interface RequestContext {
  identity: Identity;
  /** Who is charged for rate limits and quotas: the subject, or the client's address when anonymous. */
  quotaKey: string;
  /** The state of the upload the request names, as read when the owner was checked. */
  state?: UploadState;
  /** The profile a new upload gets (chosen at creation, before @tus/server runs). */
  profile?: string;
  /** Gives back what the creation was charged (rate limit, bytes), when it is refused after admission. */
  refund?: () => Promise<void>;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

export function bindContext(req: IncomingMessage, context: RequestContext): void {
  contexts.set(req, context);
}

export function contextOf(req: IncomingMessage | undefined): RequestContext | undefined {
  return req ? contexts.get(req) : undefined;
}

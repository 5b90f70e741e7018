/**
 * Every error response of the tus endpoint becomes a JSON refusal with a stable code.
 * @tus/server's own errors are plain-text values; they are mapped here by identity.
 */
import { ERRORS } from '@tus/utils';
import { ERROR_STATUS, groupDigits, Refusal, isRefusal, type ErrorBody, type ErrorCode } from '../hooks/errors.ts';
import { isS3Outage } from '../storage/s3-client.ts';
import { StateUnavailableError } from '../storage/upload-state.ts';
import type { Config } from './config.ts';

type Mapped = { status_code: number; body: string };

export function tusErrorTable(config: Config): Map<unknown, Refusal> {
  const limit = `${groupDigits(config.MAX_UPLOAD_BYTES)} bytes (MAX_UPLOAD_BYTES)`;
  const entries: Array<[unknown, ErrorCode, string]> = [
    [ERRORS.FILE_NOT_FOUND, 'E_NOT_FOUND', 'There is no upload at this URL.'],
    [ERRORS.FILE_NO_LONGER_EXISTS, 'E_GONE', 'This upload no longer exists: it expired or was removed.'],
    [ERRORS.INVALID_OFFSET, 'E_OFFSET_MISMATCH', "Upload-Offset does not match the upload's offset; send HEAD to learn it, then resume from there."],
    [ERRORS.ERR_MAX_SIZE_EXCEEDED, 'E_UPLOAD_TOO_LARGE', `The upload is larger than the limit of ${limit}.`],
    [ERRORS.ERR_SIZE_EXCEEDED, 'E_UPLOAD_TOO_LARGE', `The body goes past the declared Upload-Length, or past the limit of ${limit}.`],
    [ERRORS.INVALID_LENGTH, 'E_BAD_REQUEST', 'Send exactly one of Upload-Length and Upload-Defer-Length; a declared length cannot change or be below the offset.'],
    [ERRORS.MISSING_OFFSET, 'E_BAD_REQUEST', 'The Upload-Offset header is required.'],
    [ERRORS.INVALID_CONTENT_TYPE, 'E_CONTENT_TYPE', 'PATCH requires Content-Type: application/offset+octet-stream.'],
    [ERRORS.INVALID_METADATA, 'E_METADATA_INVALID', 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys.'],
    [ERRORS.INVALID_TERMINATION, 'E_UPLOAD_COMPLETE', 'A completed upload cannot be terminated.'],
    [ERRORS.ERR_LOCK_TIMEOUT, 'E_LOCKED', `Another request is working on this upload and did not let go within ${config.LOCK_TIMEOUT_MS} ms (LOCK_TIMEOUT_MS); retry in a moment.`],
    [ERRORS.ABORTED, 'E_BAD_REQUEST', 'The request was aborted: another request took over this upload.'],
    [ERRORS.UNSUPPORTED_CONCATENATION_EXTENSION, 'E_NOT_IMPLEMENTED', 'The concatenation extension is not supported: disable parallel uploads in the client.'],
    [ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION, 'E_NOT_IMPLEMENTED', 'Deferred length is not supported by this store.'],
    [ERRORS.UNSUPPORTED_EXPIRATION_EXTENSION, 'E_NOT_IMPLEMENTED', 'The expiration extension is not supported by this store.'],
  ];
  return new Map(entries.map(([error, code, message]) => [error, new Refusal(code, message)]));
}

/**
 * Maps an error thrown inside @tus/server to the response to send. Refusals pass as they are;
 * anything unknown is an internal error: logged with its stack, answered without one.
 */
export function mapTusError(
  error: unknown,
  table: Map<unknown, Refusal>,
  onInternal: (error: unknown) => string,
  onOutage: (error: unknown, refusal: Refusal) => void,
): Mapped {
  if (isRefusal(error)) return error;
  const known = table.get(error) ?? (isOverrun(error) ? table.get(ERRORS.ERR_SIZE_EXCEEDED) : undefined);
  if (known) return known;
  const outage = outageRefusal(error);
  if (outage) {
    onOutage(error, outage);
    return outage;
  }
  const requestId = onInternal(error);
  return new Refusal('E_INTERNAL', `Internal server error (request id ${requestId}); the upload can be resumed.`);
}

/**
 * A store could not be reached: an outage, retryable, not a bug (on every route). S3, the
 * staging or the public store (no answer, or a 5xx), is E_STORAGE_UNAVAILABLE; the state store (Redis),
 * E_STATE_UNAVAILABLE. Either way the client is told to retry, never that the upload is gone.
 */
export function outageRefusal(error: unknown): Refusal | undefined {
  if (isS3Outage(error)) return new Refusal('E_STORAGE_UNAVAILABLE', 'The storage service (S3) cannot be reached; nothing was lost: retry in a moment.');
  if (isStateOutage(error)) return new Refusal('E_STATE_UNAVAILABLE', 'The upload state store is unavailable; nothing was lost: retry in a moment.');
  return undefined;
}

function isStateOutage(error: unknown): boolean {
  if (error instanceof StateUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  // ioredis gave up on a command (Redis restarting, unreachable)
  return error.name === 'MaxRetriesPerRequestError' || /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE/.test(error.message);
}

/**
 * The body went past Upload-Length or the size limit: @tus/utils' StreamLimiter raises its
 * own MaxFileExceededError (not exported, not the ERRORS value) when no Content-Length bounded it.
 */
function isOverrun(error: unknown): boolean {
  return error instanceof Error && error.name === 'Error' && 'status_code' in error && error.status_code === 413;
}

const CODE_FOR_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'E_BAD_REQUEST',
  404: 'E_NOT_FOUND',
  409: 'E_OFFSET_MISMATCH',
  410: 'E_GONE',
  412: 'E_TUS_VERSION',
  413: 'E_UPLOAD_TOO_LARGE',
  415: 'E_CONTENT_TYPE',
  423: 'E_LOCKED',
  501: 'E_NOT_IMPLEMENTED',
};

function isErrorBody(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as Partial<ErrorBody>;
    return typeof parsed.error?.code === 'string' && parsed.error.code in ERROR_STATUS;
  } catch {
    return false;
  }
}

/** Makes sure an error response of @tus/server carries a JSON refusal body with its content type. */
export async function asJsonError(response: Response): Promise<Response> {
  if (response.status < 400) return response;
  const text = await response.text();
  const body = isErrorBody(text)
    ? text
    : JSON.stringify(Refusal.toBody(CODE_FOR_STATUS[response.status] ?? 'E_INTERNAL', text.trim() || response.statusText));
  const headers = new Headers(response.headers);
  headers.set('Content-Type', 'application/json');
  headers.set('Content-Length', String(Buffer.byteLength(body)));
  return new Response(body, { status: response.status, headers });
}

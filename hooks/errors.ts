/**
 * Every refusal tusgate gives is one of these codes, with a fixed HTTP status.
 * The list is the contract with clients: README.md ("Error codes") documents each.
 */
export const ERROR_STATUS = {
  // creation and protocol
  E_TUS_VERSION: 412,
  E_CONTENT_TYPE: 415,
  E_BAD_REQUEST: 400,
  E_METADATA_INVALID: 400,
  E_UPLOAD_TOO_LARGE: 413,
  E_NOT_FOUND: 404,
  E_GONE: 410,
  E_OFFSET_MISMATCH: 409,
  E_LOCKED: 423,
  E_LOCK_LOST: 423,
  E_UPLOAD_COMPLETE: 400,
  E_NOT_IMPLEMENTED: 501,
  E_HEADERS_TOO_LARGE: 431,
  E_REQUEST_TIMEOUT: 408,
  // who uploads, and how much
  E_UNAUTHENTICATED: 401,
  E_FORBIDDEN: 403,
  E_PROFILE_NOT_ALLOWED: 403,
  E_RATE_LIMITED: 429,
  E_QUOTA_EXCEEDED: 429,
  // the gate
  E_EMPTY_UPLOAD: 422,
  E_TYPE_UNKNOWN: 415,
  E_TYPE_NOT_ALLOWED: 415,
  E_HEADER_UNREADABLE: 422,
  E_DIMENSIONS_TOO_LARGE: 422,
  E_TOO_MANY_PIXELS: 422,
  E_TOO_MANY_FRAMES: 422,
  E_TOO_MANY_TOTAL_PIXELS: 422,
  E_REFUSED_BY_APP: 422,
  E_UPLOAD_REFUSED: 410,
  // finish
  E_IMAGE_CORRUPT: 422,
  E_TRANSCODE_TIMEOUT: 422,
  E_ORIGINAL_LOST: 410,
  // the server itself
  E_SHUTTING_DOWN: 503,
  E_BUSY: 503,
  E_STATE_UNAVAILABLE: 503,
  E_STORAGE_UNAVAILABLE: 503,
  E_AUTH_UNAVAILABLE: 503,
  E_INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** What a client receives as the JSON body of every refusal. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/**
 * A refusal as a value. It carries `status_code` and `body` so that @tus/server,
 * when one is thrown from a hook or a store, sends it as the response unchanged.
 */
export class Refusal extends Error {
  override name = 'Refusal';
  readonly status_code: number;
  readonly body: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.status_code = ERROR_STATUS[code];
    this.body = JSON.stringify(Refusal.toBody(code, message));
  }

  static toBody(code: ErrorCode, message: string): ErrorBody {
    return { error: { code, message } };
  }

  toJSON(): ErrorBody['error'] {
    return { code: this.code, message: this.message };
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, value);
}

export function isRefusal(value: unknown): value is Refusal {
  return value instanceof Refusal;
}

/** Refusals that end an upload for good (the gate's and the finish's verdicts). */
export const TERMINAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_EMPTY_UPLOAD',
  'E_TYPE_UNKNOWN',
  'E_TYPE_NOT_ALLOWED',
  'E_HEADER_UNREADABLE',
  'E_DIMENSIONS_TOO_LARGE',
  'E_TOO_MANY_PIXELS',
  'E_TOO_MANY_FRAMES',
  'E_TOO_MANY_TOTAL_PIXELS',
  'E_IMAGE_CORRUPT',
  'E_TRANSCODE_TIMEOUT',
]);

/**
 * A count with thousands separators, as `n.toLocaleString('en-US')` writes it, without Intl:
 * the first Intl call makes V8 load ICU's locale data, some 7 MB of resident memory for the
 * process's life (docs/benchmarks.md, benchmark 8), for a comma in a message. Numbers that
 * are not safe integers (none here) still go through Intl.
 */
export function groupDigits(n: number): string {
  return Number.isSafeInteger(n) ? String(n).replace(/\B(?=(\d{3})+$)/g, ',') : n.toLocaleString('en-US');
}

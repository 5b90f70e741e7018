/**
 * What tusgate admits. The numbers come from the config module; this file holds the
 * rules that use them at creation time (size, triage of the client's name and type).
 * The bytes decide (gate.ts): the name and type a client sends are hints, used only
 * to refuse early what is obviously not an allowed image.
 */
import { supportedExtensions } from 'file-type';
import { groupDigits, Refusal } from './errors.ts';

/** The image types tusgate can admit (a subset is ALLOWED_TYPES). */
export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif'] as const;

/** The limits a policy sets, by the names its messages give them. */
export type LimitName = 'allowedTypes' | 'maxUploadBytes' | 'maxPixels' | 'maxDimension' | 'maxFrames' | 'maxTotalPixels';

export interface Policy {
  /** How a refusal names each limit: the environment variable, or the profile's field. */
  names: Readonly<Record<LimitName, string>>;
  allowedTypes: readonly string[];
  maxUploadBytes: number;
  maxPixels: number;
  maxDimension: number;
  maxFrames: number;
  maxTotalPixels: number;
  windowBytes: number;
  /**
   * How far the gate follows a JPEG's segment chain (ICC profile, XMP, APP13...) to its frame
   * header when that lies beyond `windowBytes` (GATE_METADATA_BYTES).
   */
  metadataBytes: number;
}

const EXTENSIONS_OF: Readonly<Record<string, readonly string[]>> = {
  'image/jpeg': ['jpg', 'jpeg', 'jpe', 'jfif', 'pjpeg', 'pjp'],
  'image/png': ['png', 'apng'],
  'image/gif': ['gif'],
  'image/webp': ['webp'],
  'image/avif': ['avif'],
};

/** Non-standard spellings clients send for allowed types. */
const MIME_ALIASES: Readonly<Record<string, string>> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'image/x-png': 'image/png',
  'image/apng': 'image/png',
};

/** Types that say nothing: the bytes will tell. */
const UNINFORMATIVE_TYPES = new Set(['', 'application/octet-stream', 'binary/octet-stream']);

/** Extensions that name something other than an image we could admit. */
const OTHER_EXTENSIONS = new Set([
  ...supportedExtensions,
  ...['txt', 'htm', 'html', 'xhtml', 'svg', 'svgz', 'js', 'mjs', 'css', 'json', 'csv', 'md', 'php', 'sh', 'bat', 'cmd', 'ps1'],
  ...['doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'heic', 'heif', 'tif', 'tiff', 'bmp', 'ico', 'dng', 'exe', 'dll', 'msi', 'apk'],
]);

export function allowedExtensions(policy: Policy): Set<string> {
  return new Set(policy.allowedTypes.flatMap((type) => EXTENSIONS_OF[type] ?? []));
}

function extensionOf(filename: string): string | undefined {
  const base = filename.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : undefined;
}

/**
 * Creation-time triage of `filename` / `filetype` metadata: refuses a name or a declared
 * type that is obviously not an allowed image. Absent, unknown or generic values pass.
 */
export function triage(metadata: Record<string, string | null> | undefined, policy: Policy): Refusal | undefined {
  const allowed = policy.allowedTypes.join(', ');
  const filename = metadata?.filename ?? metadata?.name ?? '';
  const ext = filename ? extensionOf(filename) : undefined;
  if (ext && OTHER_EXTENSIONS.has(ext) && !allowedExtensions(policy).has(ext)) {
    return new Refusal('E_TYPE_NOT_ALLOWED', `A .${ext} file is not an allowed image. Allowed types: ${allowed}.`);
  }
  const declared = (metadata?.filetype ?? metadata?.type ?? '').trim().toLowerCase().split(';')[0] ?? '';
  const type = MIME_ALIASES[declared] ?? declared;
  if (!UNINFORMATIVE_TYPES.has(type) && /^[a-z]+\/[a-z0-9.+-]+$/.test(type) && !policy.allowedTypes.includes(type)) {
    return new Refusal('E_TYPE_NOT_ALLOWED', `The declared type ${type} is not an allowed image. Allowed types: ${allowed}.`);
  }
  return undefined;
}

/** Creation-time size check for a declared Upload-Length. */
export function checkDeclaredLength(length: number | undefined, policy: Policy): Refusal | undefined {
  if (length === 0) return new Refusal('E_EMPTY_UPLOAD', 'The upload is empty (Upload-Length: 0): an image is required.');
  if (length !== undefined && length > policy.maxUploadBytes) {
    return new Refusal(
      'E_UPLOAD_TOO_LARGE',
      `Upload-Length ${groupDigits(length)} bytes exceeds the limit of ${groupDigits(policy.maxUploadBytes)} bytes (${policy.names.maxUploadBytes}).`,
    );
  }
  return undefined;
}

/**
 * The JSON of a @tus/utils Upload as the staging stores keep it (FileStore's `<id>.json`,
 * S3Store's `.info` and its metadata cache), parsed with a schema: @tus/utils and S3Store
 * cast it, so a size that is not a number read as a deferred length and an offset as NaN.
 */
import { Upload } from '@tus/utils';
import { z } from 'zod';

const count = z.number().int().nonnegative();

/** A stored upload record that is not one (torn, foreign, of another shape): an error, never "no such upload". */
export class UploadRecordError extends Error {
  override name = 'UploadRecordError';
}

const uploadRecord = z.object({
  id: z.string(),
  /** Absent (or null: JSON's NaN) while the length is deferred. */
  size: count.nullish(),
  /** A numeric string in what older @tus/s3-store versions may have written. */
  offset: z.union([count, z.string().regex(/^\d{1,16}$/).transform(Number)]),
  metadata: z.record(z.string(), z.string().nullable()).nullish(),
  creation_date: z.string().nullish(),
  storage: z.object({ type: z.string(), path: z.string(), bucket: z.string().optional() }).nullish(),
});

/** The Upload `value` records; an error naming `what` (e.g. "its .info") when it is not the record of upload `id`. */
export function uploadFromRecord(id: string, value: unknown, what: string): Upload {
  const parsed = uploadRecord.safeParse(value);
  if (!parsed.success) throw new UploadRecordError(`upload ${id}: ${what} is not an upload record: ${parsed.error.message}`);
  const record = parsed.data;
  if (record.id !== id) throw new UploadRecordError(`upload ${id}: ${what} is the record of upload ${record.id}`);
  return new Upload({
    id,
    size: record.size ?? undefined,
    offset: record.offset,
    metadata: record.metadata ?? undefined,
    creation_date: record.creation_date ?? undefined,
    storage: record.storage ?? undefined,
  });
}

/** `text` parsed as JSON; an error naming `what` when it is not JSON. */
export function parseJson(id: string, text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UploadRecordError(`upload ${id}: ${what} is not JSON`, { cause: error });
  }
}

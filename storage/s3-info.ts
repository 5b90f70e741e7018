/**
 * An S3-staged upload's `.info` (the JSON of its Upload, with the multipart upload's id and
 * the tus version in the object's metadata) and the metadata cache's copy of it, parsed
 * (upload-record.ts): a record that does not parse is an error, not an upload.
 */
import type { MetadataValue } from '@tus/s3-store';
import { TUS_RESUMABLE } from '@tus/utils';
import { z } from 'zod';
import { parseJson, uploadFromRecord, UploadRecordError } from './upload-record.ts';

const cachedValue = z.object({
  'tus-version': z.string().optional(),
  'upload-id': z.string().optional(),
  file: z.unknown(),
});

/** The `.info` object's body and metadata. */
export function parseInfo(id: string, body: string, metadata: Record<string, string> | undefined): MetadataValue {
  const file = uploadFromRecord(id, parseJson(id, body, 'its .info'), 'its .info');
  return { 'tus-version': metadata?.['tus-version'] ?? TUS_RESUMABLE, 'upload-id': metadata?.['upload-id'] ?? '', file };
}

/** A metadata cache entry (in memory: this process's own value; in Redis: JSON another process wrote). */
export function parseCached(id: string, value: unknown): MetadataValue {
  const parsed = cachedValue.safeParse(value);
  if (!parsed.success) throw new UploadRecordError(`upload ${id}: its cached .info is not a metadata entry: ${parsed.error.message}`);
  const { 'tus-version': version, 'upload-id': uploadId, file } = parsed.data;
  return { 'tus-version': version ?? TUS_RESUMABLE, 'upload-id': uploadId ?? '', file: uploadFromRecord(id, file, 'its cached .info') };
}

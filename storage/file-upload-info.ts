/**
 * The `<id>.json` records of file staging (FileStore's configstore), replacing @tus/utils'
 * FileKvStore, which read every failure as "no such upload": a read error (EMFILE under
 * load, EIO) or a torn record answered 404, and a client told 404 forgets the upload and
 * starts again from byte 0. Here only an absent file is absent; a record is parsed with a
 * schema, and one that does not parse is an error. Writes replace the file atomically and
 * durably (FileKvStore's writeFile truncates it first: a process that died in between left
 * an empty record, that is, a lost upload), as the state records are written.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Upload, type KvStore } from '@tus/utils';
import { z } from 'zod';
import { readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import { isId } from './keys.ts';

/** What FileStore writes: `JSON.stringify(upload)`. */
const uploadRecord = z.object({
  id: z.string(),
  size: z.number().int().nonnegative().optional(),
  offset: z.number().int().nonnegative(),
  metadata: z.record(z.string(), z.string().nullable()).optional(),
  creation_date: z.string().optional(),
  storage: z.object({ type: z.string(), path: z.string(), bucket: z.string().optional() }).optional(),
});

export class FileUploadInfoStore implements KvStore<Upload> {
  constructor(private readonly directory: string) {}

  private file(id: string): string {
    if (!isId(id)) throw new Error(`not an upload id: ${id}`);
    return path.join(this.directory, `${id}.json`);
  }

  async get(id: string): Promise<Upload | undefined> {
    const raw = await readFileIfExists(this.file(id));
    if (raw === undefined) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new Error(`upload ${id}: its staging record is not JSON`, { cause: error });
    }
    const parsed = uploadRecord.safeParse(json);
    if (!parsed.success || parsed.data.id !== id) throw new Error(`upload ${id}: its staging record is not an upload record: ${parsed.error?.message ?? 'another id'}`);
    return new Upload(parsed.data);
  }

  async set(id: string, value: Upload): Promise<void> {
    await writeFileAtomic(this.file(id), JSON.stringify(value));
  }

  async delete(id: string): Promise<void> {
    await removeFile(this.file(id));
  }

  /** The ids with both a record and a data file, as FileKvStore lists them (FileStore.deleteExpired). */
  async list(): Promise<string[]> {
    const entries = new Set(await fs.readdir(this.directory));
    return [...entries].filter((entry) => entry.endsWith('.json') && entries.has(entry.slice(0, -'.json'.length))).map((entry) => entry.slice(0, -'.json'.length)).filter(isId);
  }
}

/**
 * The `<id>.json` records of file staging (FileStore's configstore), replacing @tus/utils'
 * FileKvStore, which read every failure as "no such upload": a read error (EMFILE under
 * load, EIO) or a torn record answered 404, and a client told 404 forgets the upload and
 * starts again from byte 0. Here only an absent file is absent; a record is parsed
 * (upload-record.ts), and one that does not parse is an error. Writes replace the file
 * atomically and durably, as the state records are written (FileKvStore's writeFile
 * truncates it first: a process that died in between left an empty record, a lost upload).
 * It has no `list`: FileStore.deleteExpired is never called (expiry is server/sweeper.ts's).
 */
import path from 'node:path';
import type { KvStore, Upload } from '@tus/utils';
import { readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import { isId } from './keys.ts';
import { parseJson, uploadFromRecord } from './upload-record.ts';

const RECORD = 'its staging record';

export class FileUploadInfoStore implements KvStore<Upload> {
  constructor(private readonly directory: string) {}

  private file(id: string): string {
    if (!isId(id)) throw new Error(`not an upload id: ${id}`);
    return path.join(this.directory, `${id}.json`);
  }

  async get(id: string): Promise<Upload | undefined> {
    if (!isId(id)) return undefined; // no upload has that name
    const raw = await readFileIfExists(this.file(id));
    if (raw === undefined) return undefined;
    return uploadFromRecord(id, parseJson(id, raw.toString('utf8'), RECORD), RECORD);
  }

  async set(id: string, value: Upload): Promise<void> {
    await writeFileAtomic(this.file(id), JSON.stringify(value));
  }

  async delete(id: string): Promise<void> {
    await removeFile(this.file(id));
  }
}

/**
 * Public stores: where server-made artifacts are published, chosen by PUBLIC_STORE (local
 * disk here; S3 in s3-public-store.ts, loaded only when PUBLIC_STORE=s3).
 * Only the finish writes here, and every write is atomic: a reader sees the whole
 * artifact at its key or nothing. Nothing the client sent (name, type, metadata) is
 * written with it.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isNotFound, writeFileAtomic } from './atomic-file.ts';
import { isArtifactKey } from './keys.ts';

export interface PublicStore {
  /** Writes `data` under `key`, replacing any earlier object there, atomically. */
  put(key: string, data: Buffer, contentType: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every artifact key (for tests and operators). */
  list(): Promise<string[]>;
}

export interface StoredFile {
  size: number;
  modified: Date;
  open(): ReadStream;
}

/** Artifacts as files under a directory, served by the app at /media. */
export class DiskPublicStore implements PublicStore {
  private readonly temp: string;

  constructor(readonly directory: string) {
    this.temp = path.join(directory, '.incoming');
  }

  /** Removes half-written files a killed process left behind (nothing else writes here). */
  async removeLeftovers(): Promise<number> {
    const entries = await fs.readdir(this.temp).catch((error: unknown) => {
      if (isNotFound(error)) return [];
      throw error;
    });
    await Promise.all(entries.map((entry) => fs.rm(path.join(this.temp, entry), { force: true })));
    return entries.length;
  }

  private file(key: string): string {
    if (!isArtifactKey(key)) throw new Error(`not an artifact key: ${key}`);
    return path.join(this.directory, key);
  }

  async put(key: string, data: Buffer, _contentType: string): Promise<void> {
    const target = this.file(key);
    await fs.mkdir(this.temp, { recursive: true });
    await fs.mkdir(path.dirname(target), { recursive: true });
    // written and fsynced under .incoming, renamed into place, its directory fsynced
    await writeFileAtomic(target, data, this.temp);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }

  async list(): Promise<string[]> {
    try {
      const entries = await fs.readdir(this.directory, { recursive: true });
      return entries.map((entry) => entry.split(path.sep).join('/')).filter(isArtifactKey).sort();
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
  }

  /** A published file, or undefined when the key is not valid or not there. */
  async stat(key: string): Promise<StoredFile | undefined> {
    if (!isArtifactKey(key)) return undefined;
    const file = this.file(key);
    try {
      const stats = await fs.stat(file);
      if (!stats.isFile()) return undefined;
      return { size: stats.size, modified: stats.mtime, open: () => createReadStream(file) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}

/**
 * Public stores: where server-made artifacts are published. Only the finish writes here,
 * and every write is atomic: a reader sees the whole artifact at its key or nothing.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isNotFound } from './atomic-file.ts';
import { isArtifactKey } from './keys.ts';

export interface PutResult {
  bytes: number;
}

export interface PublicStore {
  /** Writes `body` under `key`, replacing any earlier object there, atomically. */
  put(key: string, body: Readable, contentType: string): Promise<PutResult>;
  delete(key: string): Promise<void>;
  /** Keys under a prefix (for tests and operators). */
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

  async put(key: string, body: Readable, _contentType: string): Promise<PutResult> {
    const target = this.file(key);
    await fs.mkdir(this.temp, { recursive: true });
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(this.temp, `${randomBytes(8).toString('hex')}.part`);
    try {
      const out = createWriteStream(temp, { flags: 'wx' });
      await pipeline(body, out);
      await fs.rename(temp, target);
      return { bytes: out.bytesWritten };
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
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

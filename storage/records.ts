/**
 * The result record of each upload: what became of it once the bytes stopped mattering.
 * `GET /uploads/:id` reads it; the finish writes it; the gate writes `refused`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { isId } from './keys.ts';

export interface Artifact {
  id: string;
  url: string;
  key: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  /** What the server received, for a client to check against what it sent. */
  original: { bytes: number; sha256: string };
}

export interface StoredError {
  code: string;
  message: string;
}

export type UploadRecord =
  | { state: 'processing'; id: string; size: number; name: string; since: string }
  | { state: 'done'; id: string; size: number; artifact: Artifact; at: string }
  | { state: 'failed'; id: string; size: number; error: StoredError; at: string }
  | { state: 'refused'; id: string; error: StoredError; at: string };

export interface RecordStore {
  get(id: string): Promise<UploadRecord | undefined>;
  put(record: UploadRecord): Promise<void>;
  /** Ids of the records left in `processing` (a finish that may have died with its process). */
  listProcessing(): Promise<string[]>;
}

/** One JSON file per upload under a directory, replaced atomically. */
export class FileRecordStore implements RecordStore {
  private ready: Promise<unknown>;

  constructor(private readonly directory: string) {
    this.ready = fs.mkdir(directory, { recursive: true });
  }

  private file(id: string): string {
    if (!isId(id)) throw new Error(`not an upload id: ${id}`);
    return path.join(this.directory, `${id}.json`);
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    await this.ready;
    const raw = await readFileIfExists(this.file(id));
    return raw ? (JSON.parse(raw.toString('utf8')) as UploadRecord) : undefined;
  }

  async put(record: UploadRecord): Promise<void> {
    await this.ready;
    await writeFileAtomic(this.file(record.id), JSON.stringify(record));
  }

  async listProcessing(): Promise<string[]> {
    await this.ready;
    const ids: string[] = [];
    for (const entry of await fs.readdir(this.directory)) {
      const id = entry.replace(/\.json$/, '');
      if (!isId(id) || entry !== `${id}.json`) continue;
      const record = await this.get(id);
      if (record?.state === 'processing') ids.push(id);
    }
    return ids;
  }
}

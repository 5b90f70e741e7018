/**
 * Where the gate keeps what it has seen of an upload it has not judged yet (the held-back
 * prefix), and the fact that it allowed one. Refusals are result records (records.ts).
 * An upload with no gate state is pending with an empty prefix.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { isId } from './keys.ts';

export type GateState = { verdict: 'pending'; prefix: Buffer } | { verdict: 'allowed' };

export interface GateStateStore {
  get(id: string): Promise<GateState>;
  savePrefix(id: string, prefix: Buffer): Promise<void>;
  /** Records the verdict and forgets the prefix (the caller hands it to the staging store). */
  markAllowed(id: string): Promise<void>;
  delete(id: string): Promise<void>;
  /** Forgets states untouched for `ageMs` (their uploads have expired). Stores with their own expiry need not. */
  sweep?(ageMs: number): Promise<number>;
}

/** Local disk: `<id>.prefix` holds the bytes, `<id>.allowed` marks the verdict. */
export class FileGateStateStore implements GateStateStore {
  private ready: Promise<unknown>;

  constructor(private readonly directory: string) {
    this.ready = fs.mkdir(directory, { recursive: true });
  }

  private file(id: string, kind: 'prefix' | 'allowed'): string {
    if (!isId(id)) throw new Error(`not an upload id: ${id}`);
    return path.join(this.directory, `${id}.${kind}`);
  }

  async get(id: string): Promise<GateState> {
    await this.ready;
    if (await readFileIfExists(this.file(id, 'allowed'))) return { verdict: 'allowed' };
    const prefix = await readFileIfExists(this.file(id, 'prefix'));
    return { verdict: 'pending', prefix: prefix ?? Buffer.alloc(0) };
  }

  async savePrefix(id: string, prefix: Buffer): Promise<void> {
    await this.ready;
    await writeFileAtomic(this.file(id, 'prefix'), prefix);
  }

  async markAllowed(id: string): Promise<void> {
    await this.ready;
    await writeFileAtomic(this.file(id, 'allowed'), '1');
    await fs.rm(this.file(id, 'prefix'), { force: true });
  }

  async delete(id: string): Promise<void> {
    await this.ready;
    await fs.rm(this.file(id, 'prefix'), { force: true });
    await fs.rm(this.file(id, 'allowed'), { force: true });
  }

  async sweep(ageMs: number): Promise<number> {
    await this.ready;
    const cutoff = Date.now() - ageMs;
    let removed = 0;
    for (const entry of await fs.readdir(this.directory)) {
      const file = path.join(this.directory, entry);
      const stats = await fs.stat(file).catch(() => undefined);
      if (stats && stats.mtimeMs < cutoff) {
        await fs.rm(file, { force: true });
        removed += 1;
      }
    }
    return removed;
  }
}

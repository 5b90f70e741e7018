/**
 * Files written whole or not at all, and durably: a temporary sibling is written and
 * fsynced, renamed over the target, and the directory is fsynced, so a write that has
 * returned survives a power cut, and a reader never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** One fsync of `directory` itself. */
async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Directory fsyncs, shared by callers that ask while one is running (group commit): every
 * caller is answered by an fsync that began after it asked, so after its rename or unlink.
 * With many uploads at once, most records live in one directory: their writes then share
 * one fsync of it per round instead of one each.
 */
export class DirectorySyncs {
  private readonly syncing = new Map<string, { running: Promise<void>; next: Promise<void> | undefined }>();

  constructor(private readonly fsync: (directory: string) => Promise<void> = fsyncDirectory) {}

  sync(directory: string): Promise<void> {
    const current = this.syncing.get(directory);
    if (!current) return this.begin(directory);
    // the running one may have begun before this caller's change: share the next one
    current.next ??= current.running.then(
      () => this.begin(directory),
      () => this.begin(directory),
    );
    return current.next;
  }

  private begin(directory: string): Promise<void> {
    const running = this.fsync(directory).finally(() => {
      const entry = this.syncing.get(directory);
      if (entry?.running === running && entry.next === undefined) this.syncing.delete(directory);
    });
    this.syncing.set(directory, { running, next: undefined });
    return running;
  }
}

const directorySyncs = new DirectorySyncs();

/** Makes a rename or unlink in `directory` durable (an fsync of it that began after the call). */
export function syncDirectory(directory: string): Promise<void> {
  return directorySyncs.sync(directory);
}

/** Writes `data` to `temp` (which must not exist) and fsyncs it. */
async function writeSynced(temp: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.open(temp, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `file` with `data` atomically and durably; `tempDir` defaults to the file's own directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, tempDir = path.dirname(file)): Promise<void> {
  const temp = path.join(tempDir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeSynced(temp, data);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(path.dirname(file));
}

/**
 * Makes an empty `file` exist, durably (an index entry: only its name tells anything). There
 * is no content to tear, so it needs no temporary sibling and no fsync of its own: creating
 * it and the directory's fsync are enough.
 */
export async function createEmptyFile(file: string): Promise<void> {
  await (await fs.open(file, 'a')).close();
  await syncDirectory(path.dirname(file));
}

/** Removes a file (if there) durably. */
export async function removeFile(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  await syncDirectory(path.dirname(file));
}

export async function readFileIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}

/**
 * Files written whole or not at all, and durably: a temporary sibling is written and
 * fsynced, renamed over the target, and the directory is fsynced, so a write that has
 * returned survives a power cut, and a reader never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Makes a rename or unlink in `directory` durable. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
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

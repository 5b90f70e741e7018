/**
 * File staging's `<id>.json` records (storage/file-upload-info.ts) through the real FileStore:
 * only an absent record is "no such upload"; a record that cannot be read or parsed is an
 * error (a 404 would make the client start the upload again from byte 0).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERRORS, Upload } from '@tus/utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../../storage/keys.ts';
import { createFileStaging } from '../../storage/staging.ts';
import { tempDir } from '../support/server.ts';

let dir: string;
const staging = () => createFileStaging({ directory: dir, expirationMs: 0, writeBufferBytes: 64 * 1024, writeBuffersKept: 2, writeBufferBudgetBytes: 1024 * 1024 }).store;

beforeEach(() => {
  dir = tempDir('tusgate-info-');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function created(size?: number): Promise<string> {
  const id = newId();
  await staging().create(new Upload({ id, size, offset: 0, metadata: { filename: 'a.jpg', empty: null }, creation_date: new Date().toISOString() }));
  return id;
}

describe('file staging records', () => {
  it('an absent record is no such upload', async () => {
    await expect(staging().getUpload(newId())).rejects.toBe(ERRORS.FILE_NOT_FOUND);
  });

  it('round-trips an upload, a deferred length declared later, with nothing left beside it', async () => {
    const id = await created();
    expect(await staging().getUpload(id)).toMatchObject({ id, size: undefined, offset: 0, metadata: { filename: 'a.jpg', empty: null } });
    await staging().declareUploadLength(id, 1234);
    expect((await staging().getUpload(id)).size).toBe(1234);
    expect(fs.readdirSync(dir).sort()).toEqual([id, `${id}.json`].sort()); // no temporary file
  });

  it('a record that cannot be read is an error, not a missing upload', async () => {
    const id = await created(100);
    const record = path.join(dir, `${id}.json`);
    fs.rmSync(record);
    fs.mkdirSync(record); // reading it fails (EISDIR), as EMFILE or EIO would
    const error = await staging().getUpload(id).catch((e: unknown) => e);
    expect(error).not.toBe(ERRORS.FILE_NOT_FOUND);
    expect(error).toMatchObject({ code: 'EISDIR' });
  });

  it('a torn or foreign record is an error, not a missing upload', async () => {
    const id = await created(100);
    const record = path.join(dir, `${id}.json`);
    for (const content of ['', '{"id":', JSON.stringify({ id, offset: 'ten' }), JSON.stringify({ id: newId(), offset: 0 })]) {
      fs.writeFileSync(record, content);
      const error = await staging().getUpload(id).catch((e: unknown) => e);
      expect(error).not.toBe(ERRORS.FILE_NOT_FOUND);
      expect(String(error)).toMatch(/staging record/);
    }
  });
});

describe('file staging directory', () => {
  it('is made when the store is, and one that cannot be made is the constructor\'s error', () => {
    const made = path.join(dir, 'nested', 'staging');
    createFileStaging({ directory: made, expirationMs: 0, writeBufferBytes: 64 * 1024, writeBuffersKept: 2, writeBufferBudgetBytes: 1024 * 1024 });
    expect(fs.statSync(made).isDirectory()).toBe(true); // at once, not in a callback that may still run
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    // FileStore's own fs.mkdir callback would throw this later, outside any handler (a crash)
    expect(() => createFileStaging({ directory: path.join(file, 'staging'), expirationMs: 0, writeBufferBytes: 64 * 1024, writeBuffersKept: 2, writeBufferBudgetBytes: 1024 * 1024 })).toThrow(/ENOTDIR/);
  });
});

/**
 * The gated data store around a real FileStore, with the real gate: bytes never reach the
 * staging store before the verdict, the held prefix survives a new store instance (a
 * restart), the hand-off after the verdict loses and reorders nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Upload } from '@tus/utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Refusal } from '../../hooks/errors.ts';
import { judge } from '../../hooks/gate.ts';
import { loadConfig, policyOf } from '../../server/config.ts';
import { FileGateStateStore } from '../../storage/gate-state.ts';
import { GatedStore } from '../../storage/gated-store.ts';
import { newId } from '../../storage/keys.ts';
import { FileRecordStore } from '../../storage/records.ts';
import { createFileStaging } from '../../storage/staging.ts';
import * as fixtures from '../support/fixtures.ts';
import { tempDir } from '../support/server.ts';

const policy = policyOf(loadConfig({}));
let dir: string;

function gatedStore(): GatedStore {
  const staging = createFileStaging({ directory: path.join(dir, 'staging'), expirationMs: 0 });
  return new GatedStore({
    staging: staging.store,
    gateState: new FileGateStateStore(path.join(dir, 'gate')),
    records: new FileRecordStore(path.join(dir, 'records')),
    judge: async (prefix, complete) => {
      const verdict = await judge(prefix, complete, policy);
      return verdict.kind === 'refuse' ? { kind: 'refuse', refusal: verdict.refusal } : verdict;
    },
    endedError: (record) => new Refusal('E_UPLOAD_REFUSED', `refused: ${record.state}`),
  });
}

/** A stream of `data` in chunks of `size` bytes, as a request body arrives. */
function body(data: Buffer, size = 16 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

const staged = (id: string) => fs.readFileSync(path.join(dir, 'staging', id));
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

beforeEach(() => {
  dir = tempDir('tusgate-unit-');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function created(store: GatedStore, size: number): Promise<string> {
  const id = newId();
  await store.create(new Upload({ id, size, offset: 0 }));
  return id;
}

describe('GatedStore', () => {
  it('holds back bytes until the verdict, across writes and a restart', async () => {
    const image = await fixtures.jpegWithLargeApp1(100 * 1024);
    let store = gatedStore();
    const id = await created(store, image.length);
    expect(await store.write(body(image.subarray(0, 1000)), id, 0)).toBe(1000);
    expect(await store.write(body(image.subarray(1000, 30_000)), id, 1000)).toBe(30_000);
    expect(staged(id).length).toBe(0); // nothing staged before the verdict
    expect((await store.getUpload(id)).offset).toBe(30_000);

    store = gatedStore(); // a new process
    expect((await store.getUpload(id)).offset).toBe(30_000);
    expect(await store.write(body(image.subarray(30_000)), id, 30_000)).toBe(image.length);
    expect(sha(staged(id))).toBe(sha(image));
    expect((await store.getUpload(id)).offset).toBe(image.length);
  });

  it('hands the held prefix and the rest of the stream to staging intact', async () => {
    const header = await fixtures.jpeg(640, 480);
    const data = Buffer.concat([header, fixtures.randomBytesOf(5 * 1024 * 1024)]);
    const store = gatedStore();
    const id = await created(store, data.length);
    expect(await store.write(body(data, 7_000), id, 0)).toBe(data.length);
    expect(sha(staged(id))).toBe(sha(data));
  });

  it('a write that ends before the verdict can be continued from its offset', async () => {
    const image = await fixtures.jpegWithLargeApp1(60 * 1024);
    const store = gatedStore();
    const id = await created(store, image.length);
    await expect(store.write(body(image.subarray(0, 500)), id, 200)).rejects.toMatchObject({ status_code: 409 });
    expect(await store.write(body(image.subarray(0, 500)), id, 0)).toBe(500);
    expect(await store.write(body(image.subarray(500)), id, 500)).toBe(image.length);
    expect(sha(staged(id))).toBe(sha(image));
  });

  it('refuses, removes the upload, and keeps refusing', async () => {
    const store = gatedStore();
    const junk = fixtures.randomBytesOf(100_000);
    const id = await created(store, junk.length);
    const error = await store.write(body(junk), id, 0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Refusal);
    expect(error).toMatchObject({ status_code: 415, code: 'E_TYPE_UNKNOWN' });
    expect(fs.existsSync(path.join(dir, 'staging', id))).toBe(false);
    await expect(store.getUpload(id)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
    await expect(store.write(body(junk), id, 0)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
    await expect(gatedStore().getUpload(id)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
  });

  it('judges a small upload when it completes', async () => {
    const store = gatedStore();
    const html = fixtures.htmlPage(2000);
    const id = await created(store, html.length);
    expect(await store.write(body(html.subarray(0, 1000)), id, 0)).toBe(1000);
    await expect(store.write(body(html.subarray(1000)), id, 1000)).rejects.toMatchObject({ code: 'E_TYPE_UNKNOWN' });
  });
});

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
import { judge, SNIFF_BYTES } from '../../hooks/gate.ts';
import { loadConfig, MEMORY_BOUNDS, policyOf } from '../../server/config.ts';
import { GatedStore } from '../../storage/gated-store.ts';
import { newId } from '../../storage/keys.ts';
import { MemoryLeases } from '../../storage/leases.ts';
import { createFileStaging } from '../../storage/staging.ts';
import { UploadLocker } from '../../storage/upload-locker.ts';
import { FileUploadStateStore } from '../../storage/upload-state.ts';
import * as fixtures from '../support/fixtures.ts';
import { tempDir } from '../support/server.ts';

const defaults = loadConfig({});
const policy = policyOf(defaults);
let dir: string;

/** A gated store as one process has it; writes go through `write` below, under the upload's lock. */
function gatedStore(onJudge: () => void = () => {}): GatedStore {
  const staging = createFileStaging({ directory: path.join(dir, 'staging'), expirationMs: 0, writeBufferBytes: 64 * 1024, writeBuffersKept: 2, writeBufferBudgetBytes: 1024 * 1024 });
  const leases = new MemoryLeases();
  const locker = new UploadLocker(leases, { ttlMs: 1000, timeoutMs: 1000, pollMs: 100 });
  const store = new GatedStore({
    staging: staging.store,
    maxAnnotations: MEMORY_BOUNDS.creationAnnotations,
    readHead: staging.readHead,
    states: new FileUploadStateStore({ directory: path.join(dir, 'state'), retentionMs: 0, holds: (fence) => leases.holdsNow(fence) }),
    locker,
    judge: async (prefix, complete) => {
      onJudge();
      const verdict = await judge(prefix, complete, policy);
      return verdict.kind === 'refuse' ? { kind: 'refuse', refusal: verdict.refusal } : verdict;
    },
    judgeAt: { first: SNIFF_BYTES, maxStep: defaults.GATE_JUDGE_STEP_BYTES },
    rejudgeBytes: policy.metadataBytes,
    fenceCheckBytes: 1024 * 1024,
    expirationMs: 0,
    cacheSize: 100,
    endedError: (state) => new Refusal('E_UPLOAD_REFUSED', `refused: ${state.phase}`),
    lockLostError: () => new Refusal('E_LOCK_LOST', 'lost'),
  });
  locks.set(store, locker);
  return store;
}

const locks = new WeakMap<GatedStore, UploadLocker>();

/** `store.write` as @tus/server calls it: holding the upload's lock. */
async function write(store: GatedStore, data: Readable, id: string, offset: number): Promise<number> {
  const locker = locks.get(store);
  const lease = await locker?.tryLock(id);
  if (!locker || !lease) throw new Error('upload busy');
  try {
    return await store.write(data, id, offset);
  } finally {
    await locker.unlock(id, lease);
  }
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
  const locker = locks.get(store);
  const lease = await locker?.tryLock(id);
  await store.create(new Upload({ id, size, offset: 0 }));
  if (lease) await locker?.unlock(id, lease);
  return id;
}

describe('GatedStore', () => {
  it('holds back bytes until the verdict, across writes and a restart', async () => {
    const image = await fixtures.jpegWithLargeApp1(100 * 1024);
    let store = gatedStore();
    const id = await created(store, image.length);
    expect(await write(store, body(image.subarray(0, 1000)), id, 0)).toBe(1000);
    expect(await write(store, body(image.subarray(1000, 30_000)), id, 1000)).toBe(30_000);
    expect(staged(id).length).toBe(0); // nothing staged before the verdict
    expect((await store.getUpload(id)).offset).toBe(30_000);

    store = gatedStore(); // a new process
    expect((await store.getUpload(id)).offset).toBe(30_000);
    expect(await write(store, body(image.subarray(30_000)), id, 30_000)).toBe(image.length);
    expect(sha(staged(id))).toBe(sha(image));
    expect((await store.getUpload(id)).offset).toBe(image.length);
  });

  it('hands the held prefix and the rest of the stream to staging intact', async () => {
    const header = await fixtures.jpeg(640, 480);
    const data = Buffer.concat([header, fixtures.randomBytesOf(5 * 1024 * 1024)]);
    const store = gatedStore();
    const id = await created(store, data.length);
    expect(await write(store, body(data, 7_000), id, 0)).toBe(data.length);
    expect(sha(staged(id))).toBe(sha(data));
  });

  it('a write that ends before the verdict can be continued from its offset', async () => {
    const image = await fixtures.jpegWithLargeApp1(60 * 1024);
    const store = gatedStore();
    const id = await created(store, image.length);
    await expect(write(store, body(image.subarray(0, 500)), id, 200)).rejects.toMatchObject({ status_code: 409 });
    expect(await write(store, body(image.subarray(0, 500)), id, 0)).toBe(500);
    expect(await write(store, body(image.subarray(500)), id, 500)).toBe(image.length);
    expect(sha(staged(id))).toBe(sha(image));
  });

  it('refuses, removes the upload, and keeps refusing', async () => {
    const store = gatedStore();
    const junk = fixtures.randomBytesOf(100_000);
    const id = await created(store, junk.length);
    const error = await write(store, body(junk), id, 0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Refusal);
    expect(error).toMatchObject({ status_code: 415, code: 'E_TYPE_UNKNOWN' });
    expect(fs.existsSync(path.join(dir, 'staging', id))).toBe(false);
    await expect(store.getUpload(id)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
    await expect(write(store, body(junk), id, 0)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
    await expect(gatedStore().getUpload(id)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
  });

  it('judges a small upload when it completes', async () => {
    const store = gatedStore();
    const html = fixtures.htmlPage(2000);
    const id = await created(store, html.length);
    expect(await write(store, body(html.subarray(0, 1000)), id, 0)).toBe(1000);
    await expect(write(store, body(html.subarray(1000)), id, 1000)).rejects.toMatchObject({ code: 'E_TYPE_UNKNOWN' });
  });

  it('rebuilds a lost state from the staged bytes: never offset 0 for bytes already staged', async () => {
    const header = await fixtures.jpeg(640, 480);
    const data = Buffer.concat([header, fixtures.randomBytesOf(600 * 1024)]);
    const store = gatedStore();
    const id = await created(store, data.length);
    expect(await write(store, body(data.subarray(0, 400 * 1024)), id, 0)).toBe(400 * 1024);
    fs.rmSync(path.join(dir, 'state', `${id}.json`)); // the state is lost

    const restarted = gatedStore();
    expect((await restarted.getUpload(id)).offset).toBe(400 * 1024);
    expect(await write(restarted, body(data.subarray(400 * 1024)), id, 400 * 1024)).toBe(data.length);
    expect(sha(staged(id))).toBe(sha(data));
  });

  it('a state that came back older (pending, nothing held) over staged bytes: 409, repaired, never written at 0', async () => {
    const header = await fixtures.jpeg(640, 480);
    const data = Buffer.concat([header, fixtures.randomBytesOf(600 * 1024)]);
    const store = gatedStore();
    const id = await created(store, data.length);
    const record = path.join(dir, 'state', `${id}.json`);
    const older = fs.readFileSync(record); // pending, held 0: as a Redis snapshot taken now would have it
    expect(await write(store, body(data.subarray(0, 400 * 1024)), id, 0)).toBe(400 * 1024);
    fs.writeFileSync(record, older); // the state store comes back older than the staged bytes

    // another instance, without this one's cache of allowed uploads: the pending state answers
    // its held bytes without asking staging; the write asks staging before it acts
    const other = gatedStore();
    expect((await other.getUpload(id)).offset).toBe(0);
    await expect(write(other, body(data), id, 0)).rejects.toMatchObject({ status_code: 409 });
    expect(sha(staged(id))).toBe(sha(data.subarray(0, 400 * 1024))); // nothing written over the staged bytes
    expect((await other.getUpload(id)).offset).toBe(400 * 1024);
    expect(JSON.parse(fs.readFileSync(record, 'utf8'))).toMatchObject({ phase: 'allowed' });

    const restarted = gatedStore();
    expect((await restarted.getUpload(id)).offset).toBe(400 * 1024);
    expect(await write(restarted, body(data.subarray(400 * 1024)), id, 400 * 1024)).toBe(data.length);
    expect(sha(staged(id))).toBe(sha(data));
  });

  it('judges staged bytes again when their state is lost, and refuses what the gate refuses', async () => {
    const store = gatedStore();
    const id = await created(store, 10_000);
    // bytes that reached staging by another path than the gate (the state that would say so is lost)
    fs.writeFileSync(path.join(dir, 'staging', id), fixtures.htmlPage(5000));
    fs.rmSync(path.join(dir, 'state', `${id}.json`));
    await expect(gatedStore().getUpload(id)).rejects.toMatchObject({ code: 'E_UPLOAD_REFUSED' });
    expect(fs.existsSync(path.join(dir, 'staging', id))).toBe(false);
  });

  it('judges a growing prefix a bounded number of times, not once per chunk', async () => {
    const image = await fixtures.jpegWithLargeApp1(1024 * 1024); // the SOF sits after 1 MiB
    let judged = 0;
    const store = gatedStore(() => {
      judged += 1;
    });
    const id = await created(store, image.length);
    expect(await write(store, body(image, 1024), id, 0)).toBe(image.length); // 1 KiB chunks
    expect(judged).toBeLessThan(20);
    expect(sha(staged(id))).toBe(sha(image));
  });
});

/**
 * storage/atomic-file.ts: whole-or-nothing, durable files, and directory fsyncs shared by
 * the callers that ask while one runs (each still answered by an fsync that began after it
 * asked). Real files and real fsyncs in a temporary directory.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyFile, DirectorySyncs, removeFile, writeFileAtomic } from '../../storage/atomic-file.ts';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tusgate-atomic-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Real directory fsyncs, each recorded with when it began and ended; with `held`, each one
 * waits until the test lets it go (`release`), so that callers can ask while one runs.
 */
function recorded(held = false): { syncs: DirectorySyncs; runs: Array<{ began: number; ended: number }>; release: () => void } {
  const runs: Array<{ began: number; ended: number }> = [];
  const waiting: Array<() => void> = [];
  const syncs = new DirectorySyncs(async (directory) => {
    const run = { began: performance.now(), ended: Number.NaN };
    runs.push(run);
    if (held) await new Promise<void>((resolve) => waiting.push(resolve));
    const handle = await fsp.open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    run.ended = performance.now();
  });
  return { syncs, runs, release: () => waiting.shift()?.() };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('directory fsyncs', () => {
  it('are shared by the callers that ask while one runs: 20 at once take at most two', async () => {
    const { syncs, runs } = recorded();
    await Promise.all(Array.from({ length: 20 }, () => syncs.sync(dir)));
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(2);
  });

  it('answer a caller only with an fsync that began after it asked', async () => {
    const { syncs, runs, release } = recorded(true);
    const answered: Array<{ asked: number; done: number }> = [];
    const ask = async () => {
      const asked = performance.now();
      await syncs.sync(dir);
      answered.push({ asked, done: performance.now() });
    };
    const first = ask();
    await tick();
    // asked while the first runs (it may have begun before their changes): both wait for the next
    const later = [ask(), ask()];
    expect(runs.length).toBe(1);
    release();
    await first;
    await tick();
    expect(runs.length).toBe(2);
    release();
    await Promise.all(later);
    expect(answered.length).toBe(3);
    for (const { asked, done } of answered) {
      expect(runs.some((run) => run.began >= asked && run.ended <= done)).toBe(true);
    }
    expect(runs.length).toBe(2);
  });

  it('keep apart different directories, and pass a failure to the callers it answers', async () => {
    const { syncs, runs } = recorded();
    const other = fs.mkdtempSync(path.join(dir, 'other-'));
    await Promise.all([syncs.sync(dir), syncs.sync(other)]);
    expect(runs.length).toBe(2);
    await expect(syncs.sync(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await syncs.sync(dir); // a failure elsewhere leaves nothing behind
  });
});

describe('atomic files', () => {
  it('replace a file whole, concurrently, and remove it (twice is fine)', async () => {
    const file = path.join(dir, 'record.json');
    await Promise.all(Array.from({ length: 10 }, (_, i) => writeFileAtomic(file, JSON.stringify({ i }))));
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toHaveProperty('i');
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    await removeFile(file);
    await removeFile(file);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('make an empty index entry exist, and leave one that is there as it is', async () => {
    const entry = path.join(dir, 'entry');
    await Promise.all([createEmptyFile(entry), createEmptyFile(entry)]);
    expect(fs.statSync(entry).size).toBe(0);
    await createEmptyFile(entry);
    expect(fs.readdirSync(dir).filter((name) => name.startsWith('entry'))).toEqual(['entry']);
  });
});

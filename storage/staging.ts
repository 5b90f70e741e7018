/** The tus staging store: where the bytes of allowed uploads are received before the finish. */
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import type { DataStore } from '@tus/utils';

/** A staging store is a tus DataStore that can also stream back what it holds. */
export interface StagingStore {
  store: DataStore;
  read(id: string): Readable;
}

export interface FileStagingOptions {
  directory: string;
  expirationMs: number;
}

export function createFileStaging({ directory, expirationMs }: FileStagingOptions): StagingStore {
  const store = new FileStore({ directory, expirationPeriodInMilliseconds: expirationMs });
  return { store, read: (id) => store.read(id) };
}

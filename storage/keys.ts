/** Server-made names: upload ids, artifact names and the public keys built from them. */
import { randomBytes } from 'node:crypto';

const ID = /^[0-9a-f]{32}$/;
const KEY = /^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{32}\.(webp|avif)$/;

/** 128 random bits, hex: used for upload ids and artifact names alike. */
export function newId(): string {
  return randomBytes(16).toString('hex');
}

export function isId(value: string): boolean {
  return ID.test(value);
}

/** `ab/cd/abcd….webp`: sharded so that no directory or S3 prefix grows without bound. */
export function artifactKey(name: string, extension: 'webp' | 'avif'): string {
  if (!isId(name)) throw new Error(`not a server-made name: ${name}`);
  return `${name.slice(0, 2)}/${name.slice(2, 4)}/${name}.${extension}`;
}

export function isArtifactKey(key: string): boolean {
  return KEY.test(key);
}

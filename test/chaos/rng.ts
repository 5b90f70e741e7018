/** Seeded randomness for the chaos run, on top of test/support/random.ts: one stream per concern, so a seed replays the same plan. */
import { xorshift32 } from '../support/random.ts';

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** A float in [min, max). */
  between(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** An independent stream derived from this seed and a name (so adding draws to one concern does not shift another). */
  fork(name: string): Rng;
}

export function rng(seed: number): Rng {
  const raw = xorshift32(seed);
  // the first outputs of xorshift32 from small seeds are poorly mixed: skip a few
  for (let i = 0; i < 8; i++) raw();
  const next = () => raw() / 2 ** 32;
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    between: (min, max) => min + next() * (max - min),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error('pick from an empty list');
      return item;
    },
    fork: (name) => rng(hash(`${seed}:${name}`)),
  };
}

/** FNV-1a, 32 bits. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h || 1;
}

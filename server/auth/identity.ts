/**
 * The identity claims (sub, profile, meta), validated the same way whether they come
 * from a verified JWT or from the app's auth hook.
 */
import { z } from 'zod';
import type { Identity } from './types.ts';

export const MAX_META_KEYS = 16;
export const MAX_META_VALUE_CHARS = 256;
export const MAX_SUB_CHARS = 256;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** What each claim must be, as the end of a sentence ("The token's meta claim must be …"). */
const RULES = {
  sub: `must be a non-empty string of at most ${MAX_SUB_CHARS} characters`,
  profile: 'must be 1 to 64 letters, digits, "_" or "-"',
  meta: `must be an object of at most ${MAX_META_KEYS} keys (1 to 64 letters, digits, "_" or "-" each) with string values of at most ${MAX_META_VALUE_CHARS} characters`,
} as const;

type Claim = keyof typeof RULES;

// zod's record silently drops an own "__proto__" key; refuse it instead of accepting a different object.
const noProtoKey = z.custom<unknown>(
  (value) => !(typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')),
);

const meta = noProtoKey.pipe(
  z
    .record(z.string().regex(NAME), z.string().max(MAX_META_VALUE_CHARS))
    .refine((record) => Object.keys(record).length <= MAX_META_KEYS),
);

const claims = z.object({
  sub: z.string().min(1).max(MAX_SUB_CHARS),
  profile: z.string().regex(NAME).optional(),
  meta: meta.optional(),
});

export type IdentityParse = { ok: true; identity: Identity } | { ok: false; claim: Claim | null; rule: string };

/** Validates claims; on failure names the first bad claim and its rule (never the offending value). */
export function parseIdentity(value: unknown): IdentityParse {
  const parsed = claims.safeParse(value);
  if (parsed.success) {
    const { sub, profile, meta: labels } = parsed.data;
    const identity: Identity = { sub, meta: { ...labels } };
    if (profile !== undefined) identity.profile = profile;
    return { ok: true, identity };
  }
  const first = parsed.error.issues[0]?.path[0];
  const claim = first === 'sub' || first === 'profile' || first === 'meta' ? first : null;
  return { ok: false, claim, rule: claim === null ? 'must be a JSON object' : RULES[claim] };
}

/** A copy the caller may change without changing a cached answer. */
export function copyIdentity(identity: Identity): Identity {
  return { ...identity, meta: { ...identity.meta } };
}

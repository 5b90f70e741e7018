/**
 * Upload profiles: named sets of limits and output, chosen per upload (an avatar is
 * 512 x 512 and never animated; a gallery photo keeps its aspect up to 4096 px). The
 * `default` profile is the one the environment variables define; PROFILES_FILE adds
 * named ones, each field falling back to the default's value.
 *
 * Which profile an upload gets is decided by who uploads (the token's `profile` claim,
 * or the auth hook's answer), never by the client alone: see `chooseProfile`.
 */
import { z } from 'zod';
import { Refusal } from './errors.ts';
import { IMAGE_TYPES, type LimitName, type Policy } from './policy.ts';
import type { TranscodeOptions } from './transcode.ts';


const NAME = /^[A-Za-z0-9_-]{1,64}$/;

const positive = z.number().int().min(1);

const output = z.discriminatedUnion('fit', [
  z.object({
    fit: z.literal('inside'),
    format: z.enum(['webp', 'avif']).optional(),
    quality: z.number().int().min(1).max(100).optional(),
    longEdge: z.number().int().min(16).max(16383).optional(),
  }),
  z.object({
    fit: z.literal('cover'),
    format: z.enum(['webp', 'avif']).optional(),
    quality: z.number().int().min(1).max(100).optional(),
    width: z.number().int().min(16).max(16383),
    height: z.number().int().min(16).max(16383),
  }),
]);

const profileSchema = z
  .object({
    allowedTypes: z.array(z.enum(IMAGE_TYPES)).min(1).optional(),
    maxUploadBytes: positive.optional(),
    maxPixels: positive.optional(),
    maxDimension: positive.max(65535).optional(),
    maxFrames: positive.optional(),
    maxTotalPixels: positive.optional(),
    output: output.optional(),
    animation: z.enum(['animate', 'first-frame']).optional(),
  })
  .strict();

export const profilesFileSchema = z
  .record(z.string().regex(NAME, 'a profile name is 1-64 letters, digits, _ or -'), profileSchema)
  .refine((profiles) => !('default' in profiles), 'the default profile is set by the environment variables, not in PROFILES_FILE');

export interface Profile {
  name: string;
  policy: Policy;
  transcode: TranscodeOptions;
}

export type Profiles = ReadonlyMap<string, Profile>;

/** Builds every profile: `default` from the environment's policy and output, then the file's. */
export function buildProfiles(defaults: Profile, file: unknown): Profiles {
  const parsed = profilesFileSchema.parse(file ?? {});
  const profiles = new Map<string, Profile>([['default', defaults]]);
  for (const [name, spec] of Object.entries(parsed)) {
    const field = (limit: LimitName) => `profile ${name}: ${limit}`;
    const policy: Policy = {
      ...defaults.policy,
      names: {
        allowedTypes: field('allowedTypes'),
        maxUploadBytes: field('maxUploadBytes'),
        maxPixels: field('maxPixels'),
        maxDimension: field('maxDimension'),
        maxFrames: field('maxFrames'),
        maxTotalPixels: field('maxTotalPixels'),
      },
      ...(spec.allowedTypes ? { allowedTypes: spec.allowedTypes } : {}),
      ...(spec.maxUploadBytes ? { maxUploadBytes: Math.min(spec.maxUploadBytes, defaults.policy.maxUploadBytes) } : {}),
      ...(spec.maxPixels ? { maxPixels: spec.maxPixels } : {}),
      ...(spec.maxDimension ? { maxDimension: spec.maxDimension } : {}),
      ...(spec.maxFrames ? { maxFrames: spec.maxFrames } : {}),
      ...(spec.maxTotalPixels ? { maxTotalPixels: spec.maxTotalPixels } : {}),
    };
    if (policy.maxTotalPixels < policy.maxPixels) {
      throw new Error(`profile ${name}: maxTotalPixels (${policy.maxTotalPixels}) must be at least maxPixels (${policy.maxPixels})`);
    }
    const out = spec.output;
    const transcode: TranscodeOptions = {
      ...defaults.transcode,
      ...(out?.format ? { format: out.format } : {}),
      ...(out?.quality ? { quality: out.quality } : {}),
      ...(out?.fit === 'inside' && out.longEdge ? { longEdge: out.longEdge } : {}),
      ...(out?.fit === 'cover' ? { cover: { width: out.width, height: out.height } } : {}),
      ...(spec.animation ? { animation: spec.animation } : {}),
    };
    profiles.set(name, { name, policy, transcode });
  }
  return profiles;
}

/** The `default` profile (always there: buildProfiles puts it first). */
export function defaultProfile(profiles: Profiles): Profile {
  const profile = profiles.get('default');
  if (!profile) throw new Error('no default profile');
  return profile;
}

/** The largest upload any profile admits (the tus server's advertised Tus-Max-Size). */
export function largestUpload(profiles: Profiles): number {
  return Math.max(...[...profiles.values()].map((profile) => profile.policy.maxUploadBytes));
}

export interface ProfileChoice {
  /** The profile the identity names (a token claim, the auth hook's answer), if any. */
  granted?: string;
  /** The profile the client asks for in Upload-Metadata (`profile`), if any. */
  requested?: string;
  /** Profiles anyone may choose by metadata (PUBLIC_PROFILES), besides `default`. */
  publicProfiles: readonly string[];
}

/**
 * The profile of a new upload. A profile granted by the identity is used (and a request
 * for another one is refused); without a grant, only `default` and the public profiles
 * may be requested. Refused with 403 E_PROFILE_NOT_ALLOWED otherwise.
 */
export function chooseProfile(profiles: Profiles, { granted, requested, publicProfiles }: ProfileChoice): Profile | Refusal {
  const name = requested ?? granted ?? 'default';
  const allowed = granted !== undefined ? name === granted : name === 'default' || publicProfiles.includes(name);
  const profile = profiles.get(name);
  if (!allowed || !profile) {
    const mayUse = granted !== undefined ? [granted] : ['default', ...publicProfiles];
    return new Refusal('E_PROFILE_NOT_ALLOWED', `The upload profile "${name}" is not allowed here; this client may use: ${mayUse.join(', ')}.`);
  }
  return profile;
}

/**
 * HOOKS_MODULE: for operators who prefer code to HTTP, a module whose exported functions
 * tusgate calls in-process with the same data as the webhooks:
 *
 *   export async function onCreate(event)    // may return { refuse: 'why' }: 403 E_FORBIDDEN
 *   export async function onVerdict(event)   // after the gate allowed; may return { refuse: 'why' }: 422 E_REFUSED_BY_APP
 *   export async function onPublished(event) // the artifact is public
 *   export async function onFailed(event)    // refused by the gate or failed at finish
 *
 * A hook that throws is logged; for onCreate and onVerdict the upload is then refused
 * (fail closed), for the others nothing changes.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { EventData } from '../storage/webhook-events.ts';

export type HookVerdict = { refuse: string } | undefined | void;

export interface InProcessHooks {
  onCreate?: (event: EventData) => HookVerdict | Promise<HookVerdict>;
  onVerdict?: (event: EventData) => HookVerdict | Promise<HookVerdict>;
  onPublished?: (event: EventData) => void | Promise<void>;
  onFailed?: (event: EventData) => void | Promise<void>;
}

const HOOK_NAMES = ['onCreate', 'onVerdict', 'onPublished', 'onFailed'] as const;

const verdictSchema = z.union([z.undefined(), z.null(), z.object({ refuse: z.string().min(1).max(1000) })]);

/** What a deciding hook answered: a refusal message, or nothing. */
export function refusalOf(answer: unknown): string | undefined {
  const parsed = verdictSchema.safeParse(answer);
  if (!parsed.success) throw new Error(`a hook answered ${JSON.stringify(answer)}; expected nothing or { refuse: "why" }`);
  return parsed.data?.refuse;
}

export async function loadHooksModule(file: string | undefined): Promise<InProcessHooks> {
  if (!file) return {};
  const loaded: unknown = await import(pathToFileURL(path.resolve(file)).href);
  if (typeof loaded !== 'object' || loaded === null) throw new Error(`HOOKS_MODULE=${file} exports nothing`);
  const hooks: InProcessHooks = {};
  for (const name of HOOK_NAMES) {
    const value: unknown = Reflect.get(loaded, name);
    if (value === undefined) continue;
    if (typeof value !== 'function') throw new Error(`HOOKS_MODULE=${file}: ${name} must be a function`);
    Object.assign(hooks, { [name]: (event: EventData) => Reflect.apply(value, undefined, [event]) });
  }
  if (Object.keys(hooks).length === 0) throw new Error(`HOOKS_MODULE=${file} exports none of ${HOOK_NAMES.join(', ')}`);
  return hooks;
}

/**
 * The fault loop: at seeded random moments (a gap of faultGapMin..Max s), restart Redis,
 * SIGKILL an instance and start its replacement on the same port, or both at once. Bounded
 * by a count; stop() ends it and waits for a fault in progress (and a replacement) to settle.
 */
import type { Instances, OwnRedis } from './cluster.ts';
import type { Rng } from './rng.ts';

export type FaultKind = 'redis-restart' | 'instance-kill';

export interface FaultEvent {
  kind: FaultKind;
  /** ms since the upload phase started. */
  at: number;
  /** How long the fault lasted (Redis down and up again; instance killed to replacement listening), ms. */
  ms: number;
  detail: string;
  error?: string;
}

export interface FaultLoop {
  events: FaultEvent[];
  /** Problems that fail the run: a replacement that never started, a Redis restart that failed. */
  problems: string[];
  /** Worth knowing, not failures: a replacement start that failed and was retried. */
  notes: string[];
  stop(): Promise<void>;
}

export interface FaultOptions {
  rng: Rng;
  redis: OwnRedis;
  instances: Instances;
  gapMinMs: number;
  gapMaxMs: number;
  maxFaults: number;
  started: number;
  log: (line: string) => void;
}

export function startFaults(o: FaultOptions): FaultLoop {
  const events: FaultEvent[] = [];
  const problems: string[] = [];
  const notes: string[] = [];
  let stopping = false;
  let injected = 0;
  let wake: () => void = () => {};
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const now = () => Math.round(performance.now() - o.started);

  async function restartRedis(): Promise<void> {
    const at = now();
    try {
      await o.redis.restart();
      events.push({ kind: 'redis-restart', at, ms: now() - at, detail: 'redis.sh restart' });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      events.push({ kind: 'redis-restart', at, ms: now() - at, detail: 'redis.sh restart', error: message });
      problems.push(`redis restart at ${at} ms failed: ${message}`);
    }
  }

  /** SIGKILL now; the replacement starts in the background (the slot is busy until it listens), so faults keep their pace. */
  const replacements = new Set<Promise<void>>();
  async function killInstance(): Promise<void> {
    const candidates = o.instances.up();
    // keep one instance serving
    if (candidates.length < 2) {
      o.log('    (no kill: one instance left serving)');
      return;
    }
    const slot = o.rng.pick(candidates);
    slot.busy = true;
    const at = now();
    const pid = slot.current?.process.pid;
    await o.instances.kill(slot);
    const replacement = o.instances
      .replace(slot)
      .then((failures) => {
        for (const failure of failures) notes.push(`replacement of slot ${slot.index} (killed at ${at} ms): a start failed and was retried: ${failure}`);
        events.push({ kind: 'instance-kill', at, ms: now() - at, detail: `slot ${slot.index} (port ${slot.port}, pid ${pid ?? '?'}) SIGKILL, replaced` });
      })
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        events.push({ kind: 'instance-kill', at, ms: now() - at, detail: `slot ${slot.index} SIGKILL`, error: message });
        problems.push(message);
      })
      .finally(() => {
        slot.busy = false;
        replacements.delete(replacement);
      });
    replacements.add(replacement);
  }

  const loop = (async () => {
    // the first fault comes early (uploads have begun), the others every gapMin..gapMax
    let gap = o.rng.between(Math.min(1000, o.gapMinMs), o.gapMinMs);
    while (!stopping && injected < o.maxFaults) {
      await sleep(gap);
      gap = o.rng.between(o.gapMinMs, o.gapMaxMs);
      if (stopping) break;
      injected += 1;
      const roll = o.rng.next();
      const kind = roll < 0.35 ? 'redis' : roll < 0.8 ? 'kill' : 'both';
      o.log(`  [fault ${String(now()).padStart(7)} ms] ${kind === 'both' ? 'redis restart + instance kill' : kind === 'redis' ? 'redis restart' : 'instance kill'}`);
      if (kind === 'redis') await restartRedis();
      else if (kind === 'kill') await killInstance();
      else await Promise.all([restartRedis(), killInstance()]);
    }
  })();

  return {
    events,
    problems,
    notes,
    async stop() {
      stopping = true;
      wake();
      await loop;
      await Promise.all([...replacements]);
    },
  };
}

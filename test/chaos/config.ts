/**
 * The chaos run's settings: a flag (`npm run chaos -- --uploads 12`) wins over the
 * environment (CHAOS_UPLOADS=12), which wins over the default.
 */
export interface ChaosConfig {
  seed: number;
  instances: number;
  uploads: number;
  /** Uploads running at once. */
  concurrency: number;
  /** The upload phase ends by then (s); uploads still running are then checked as unfinished. */
  deadlineS: number;
  /** Seconds between two faults: uniform in [min, max]. */
  faultGapMinS: number;
  faultGapMaxS: number;
  /** At most this many faults in a run. */
  maxFaults: number;
  /** A request without any progress or response for this long is a hang (s). */
  stallS: number;
}

interface Setting {
  key: keyof ChaosConfig;
  flag: string;
  env: string;
  fallback: () => number;
  min: number;
}

const SETTINGS: Setting[] = [
  { key: 'seed', flag: 'seed', env: 'CHAOS_SEED', fallback: () => (Date.now() % 2 ** 31) || 1, min: 1 },
  { key: 'instances', flag: 'instances', env: 'CHAOS_INSTANCES', fallback: () => 3, min: 1 },
  { key: 'uploads', flag: 'uploads', env: 'CHAOS_UPLOADS', fallback: () => 40, min: 1 },
  { key: 'concurrency', flag: 'concurrency', env: 'CHAOS_CONCURRENCY', fallback: () => 8, min: 1 },
  { key: 'deadlineS', flag: 'deadline', env: 'CHAOS_DEADLINE_S', fallback: () => 360, min: 10 },
  { key: 'faultGapMinS', flag: 'fault-gap-min', env: 'CHAOS_FAULT_GAP_MIN_S', fallback: () => 3, min: 0 },
  { key: 'faultGapMaxS', flag: 'fault-gap-max', env: 'CHAOS_FAULT_GAP_MAX_S', fallback: () => 8, min: 0 },
  { key: 'maxFaults', flag: 'max-faults', env: 'CHAOS_MAX_FAULTS', fallback: () => 80, min: 0 },
  { key: 'stallS', flag: 'stall', env: 'CHAOS_STALL_S', fallback: () => 90, min: 5 },
];

function flagValue(argv: string[], flag: string): string | undefined {
  const at = argv.findIndex((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  if (at < 0) return undefined;
  const arg = argv[at] ?? '';
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[at + 1];
}

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): ChaosConfig {
  const config = {} as Record<keyof ChaosConfig, number>;
  const problems: string[] = [];
  for (const s of SETTINGS) {
    const given = flagValue(argv, s.flag) ?? env[s.env];
    if (given === undefined || given === '') {
      config[s.key] = s.fallback();
      continue;
    }
    const value = Number(given);
    if (!Number.isInteger(value) || value < s.min) problems.push(`--${s.flag} / ${s.env} must be an integer >= ${s.min}, not "${given}"`);
    else config[s.key] = value;
  }
  if (config.faultGapMaxS < config.faultGapMinS) problems.push('the fault gap max is below its min');
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return config;
}

export function describeConfig(c: ChaosConfig): string {
  return [
    `seed ${c.seed} (replay: CHAOS_SEED=${c.seed})`,
    `${c.instances} instances, ${c.uploads} uploads (${c.concurrency} at a time)`,
    `a fault every ${c.faultGapMinS}-${c.faultGapMaxS} s (at most ${c.maxFaults})`,
    `upload deadline ${c.deadlineS} s, hang after ${c.stallS} s without progress`,
  ].join(', ');
}

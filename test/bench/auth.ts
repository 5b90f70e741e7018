/**
 * Benchmark 7: what JWT auth costs on the receive path. tusgate with AUTH_MODE=none against
 * tusgate with AUTH_MODE=jwt (HS256, AUTH_JWT_SECRET), whose client sends
 * `Authorization: Bearer <token>` on every request. Timed as benchmark 1 times
 * (receive.ts): the same tus-js-client driver and payload, to every byte written by the
 * server process (/proc/<pid>/io wchar).
 *
 * Every measured run has a server process of its own: start, one warm-up upload (the case's
 * chunking, not counted), the measured upload, stop. A round is none, then jwt, or jwt, then
 * none: the order alternates by round, and BENCH_AUTH_ROUNDS (default 10; with 6, none's own
 * runs spread wider than the 3% the target resolves) is even so that each kind goes first as
 * often. The target is met by the median over rounds of each round's jwt / none, a paired
 * ratio: the machine's speed drifts over the benchmark, and the two runs of a round see the
 * same part of it. Each jwt server is first checked to refuse a POST without a token (401),
 * so that no "jwt" number is one of a server with auth off.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { SignJWT } from 'jose';
import type { TusOptions } from './clients.ts';
import { imageBuffer } from './payloads.ts';
import { RECEIVE_TUSGATE_ENV, rawRunsTable, runLine, settleDir, timedRun, valuesOf, type ReceiveRun, type UploadCase } from './receive.ts';
import { MiB, startTusgate } from './servers.ts';
import { fmt, loadAverages, median, minimum, rotated } from './stats.ts';
import { mdTable, verdict, type SummaryRow } from './table.ts';

export type AuthKind = 'none' | 'jwt';

const KINDS: readonly AuthKind[] = ['none', 'jwt'];

/** The median over rounds of a round's jwt MB/s over its none MB/s: the target. */
export const AUTH_TARGET = 0.97;

export const AUTH_WARM_BYTES = 16 * MiB;

export interface AuthCase extends UploadCase {
  /** Bytes per PATCH; undefined: one PATCH per upload. */
  chunkSize?: number;
  runs: Array<ReceiveRun<AuthKind>>;
  /** Median and minimum MB/s to every byte stored, per kind. */
  median: Record<AuthKind, number>;
  min: Record<AuthKind, number>;
  /** Median MB/s to the last final response (the finish included), per kind. */
  doneMedian: Record<AuthKind, number>;
  /** Each round's jwt / none MB/s stored, round 1 first (NaN for a round where either never stored every byte). */
  roundRatios: number[];
  /**
   * The median of roundRatios (the target): the two runs of a round are adjacent in time,
   * so a drift of the machine's speed across the rounds cancels.
   */
  ratio: number;
  /** median jwt / median none (reported). */
  ratioOfMedians: number;
}

export interface AuthResult {
  rounds: number;
  cases: AuthCase[];
  tusgateEnv: Record<string, string>;
  /** 1 / 5 / 15-minute load averages when the benchmark ended (other work on the machine adds noise). */
  loadAfter: string;
}

export const passes = (c: AuthCase): boolean | undefined => (Number.isFinite(c.ratio) ? c.ratio >= AUTH_TARGET : undefined);

/** The status a POST without credentials gets. */
async function tokenlessCreate(endpoint: string): Promise<number> {
  const response = await fetch(endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } });
  await response.arrayBuffer();
  return response.status;
}

export async function authBench(workDir: string, rounds: number, log: (line: string) => void): Promise<AuthResult> {
  const secret = randomBytes(32).toString('hex');
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('bench-user')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(secret));
  const tusgateEnv = { ...RECEIVE_TUSGATE_ENV };
  const kinds: Record<AuthKind, { env: Record<string, string>; headers: Record<string, string> }> = {
    // AUTH_MODE=none is what an unset AUTH_MODE means on a loopback HOST; said explicitly so that the bench's own environment cannot change it
    none: { env: { AUTH_MODE: 'none' }, headers: {} },
    jwt: { env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: secret }, headers: { Authorization: `Bearer ${token}` } },
  };

  const cases = [
    { name: 'single', label: '1 x 256 MiB, one PATCH', uploads: 1, size: 256 * MiB },
    { name: 'concurrent', label: '16 x 16 MiB concurrently', uploads: 16, size: 16 * MiB },
    // 256 PATCHes, not 64: at 300-400 MB/s 64 MiB took 170-330 ms, too short a span to tell a
    // 3% difference from the machine's noise (the same code measured 0.94x and 1.13x)
    { name: 'chunked', label: '1 x 256 MiB in 1 MiB chunks (256 PATCHes)', uploads: 1, size: 256 * MiB, chunkSize: MiB },
  ];
  const warm = await imageBuffer(AUTH_WARM_BYTES);

  /** One measured run on a server of its own. */
  const freshRun = async (kind: AuthKind, payload: Buffer, c: (typeof cases)[number], round: number): Promise<ReceiveRun<AuthKind>> => {
    const dataDir = path.join(workDir, `auth-${kind}`);
    const target = await startTusgate(dataDir, { ...tusgateEnv, ...kinds[kind].env });
    try {
      if (kind === 'jwt') {
        const status = await tokenlessCreate(target.endpoint);
        if (status !== 401) throw new Error(`the jwt server answered ${status} to a POST without a token, not 401: auth is not on`);
      }
      const client: TusOptions = { headers: kinds[kind].headers, chunkSize: c.chunkSize };
      const warmed = await timedRun(target, kind, warm, 1, 'warm-up', round, client);
      if (warmed.statuses !== '1x200') throw new Error(`${kind} warm-up upload answered ${warmed.statuses}`);
      execFileSync('sync');
      return await timedRun(target, kind, payload, c.uploads, c.name, round, client);
    } finally {
      await target.stop();
      settleDir(dataDir);
    }
  };

  const out: AuthCase[] = [];
  for (const c of cases) {
    const payload = await imageBuffer(c.size);
    const runs: Array<ReceiveRun<AuthKind>> = [];
    for (let round = 1; round <= rounds; round++) {
      // each kind goes first in every other round: the second process of a round starts just
      // after the first one's data dir was removed, and that place is not always jwt's
      for (const kind of rotated(KINDS, round)) {
        const run = await freshRun(kind, payload, c, round);
        runs.push(run);
        log(runLine(run));
      }
    }
    const per = (f: (values: number[]) => number, key: 'mbpsStored' | 'mbpsDone') =>
      ({ none: f(valuesOf(runs, 'none', key)), jwt: f(valuesOf(runs, 'jwt', key)) });
    const medians = per(median, 'mbpsStored');
    const ratios = roundRatios(runs, rounds);
    out.push({
      ...c,
      runs,
      median: medians,
      min: per(minimum, 'mbpsStored'),
      doneMedian: per(median, 'mbpsDone'),
      roundRatios: ratios,
      ratio: median(ratios),
      ratioOfMedians: medians.jwt / medians.none,
    });
  }
  return { rounds, cases: out, tusgateEnv, loadAfter: loadAverages() };
}

/** Each round's jwt MB/s stored over its none MB/s (NaN for a round where either never stored every byte). */
function roundRatios(runs: ReadonlyArray<ReceiveRun<AuthKind>>, rounds: number): number[] {
  const stored = (round: number, kind: AuthKind) => runs.find((r) => r.round === round && r.server === kind)?.mbpsStored ?? Number.NaN;
  return Array.from({ length: rounds }, (_, i) => stored(i + 1, 'jwt') / stored(i + 1, 'none'));
}

/** The progress line of a case's result (run.ts). */
export function authResultLine(c: AuthCase): string {
  const result = verdict(passes(c));
  return `  => ${c.label}: none median ${fmt(c.median.none)} MB/s (min ${fmt(c.min.none)}), jwt median ${fmt(c.median.jwt)} MB/s (min ${fmt(c.min.jwt)}), jwt/none per round, median ${fmt(c.ratio, 3)}x ${result} (target >= ${AUTH_TARGET}x), median jwt / median none ${fmt(c.ratioOfMedians, 3)}x`;
}

export function authRows(result: AuthResult): SummaryRow[] {
  return result.cases.map((c) => ({
    benchmark: `7 JWT auth ${c.label}`,
    metric: 'MB/s to all bytes stored, jwt / none in the same round, median over rounds',
    tusgate: `${fmt(c.median.jwt)} (jwt)`,
    baseline: `${fmt(c.median.none)} (none)`,
    ratio: `${fmt(c.ratio, 3)}x`,
    target: `>= ${AUTH_TARGET}x`,
    result: verdict(passes(c)),
  }));
}

export function authSection(result: AuthResult): string {
  const env = Object.entries(result.tusgateEnv).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    '## 7. JWT auth on vs off: receive-path throughput',
    '',
    [
      `- **none**: tusgate as in benchmark 1 (LOG_LEVEL=info, MAX_UPLOAD_BYTES=2 GiB, ${env}), AUTH_MODE=none (what an unset AUTH_MODE means on a loopback HOST); the client sends no credential.`,
      `- **jwt**: the same with AUTH_MODE=jwt and AUTH_JWT_SECRET (64 hex characters, made anew by each bench run): every POST and PATCH carries \`Authorization: Bearer <token>\`, an HS256 token with \`sub\` and \`exp\` signed with jose, verified by the server on every request. Each jwt server is first checked to answer 401 to a POST without a token.`,
      '- **Driver, payload and measure**: those of benchmark 1 (tus-js-client, Buffer source, no retries; the JPEG plus filler; from `upload.start()` until the server process has written every byte, `/proc/<server pid>/io` wchar). In the chunked case tus-js-client sends 1 MiB PATCHes one after another: one auth check per request, so the case where a per-request cost would show.',
      `- **Order**: every run on a fresh server process: start, one warm-up upload of ${fmt(AUTH_WARM_BYTES / MiB, 0)} MiB with the case's chunking (not counted), \`sync\`, the measured upload, stop; its data dir is then removed and \`sync\` run. A round is none, then jwt in odd rounds and jwt, then none in even ones (each kind goes first as often when the count is even); ${result.rounds} round${result.rounds === 1 ? '' : 's'} per case (\`BENCH_AUTH_ROUNDS\`). Median and minimum per kind. The ratio that meets the target (>= ${AUTH_TARGET}x) is the median over the rounds of each round's jwt / none: the two runs of a round are adjacent in time, so a drift of the machine's speed over the benchmark cancels out, where the ratio of the two medians would carry it (${driftSentence(result)}). That ratio of medians is shown beside it.`,
    ].join('\n'),
    '',
    mdTable(
      ['case', 'none MB/s median', 'none MB/s min', 'jwt MB/s median', 'jwt MB/s min', 'jwt / none per round, median', 'median jwt / median none', 'none MB/s to final response', 'jwt MB/s to final response'],
      result.cases.map((c) => [
        c.label,
        fmt(c.median.none),
        fmt(c.min.none),
        fmt(c.median.jwt),
        fmt(c.min.jwt),
        `${fmt(c.ratio, 3)}x`,
        `${fmt(c.ratioOfMedians, 3)}x`,
        fmt(c.doneMedian.none),
        fmt(c.doneMedian.jwt),
      ]),
    ),
    '',
    'Raw runs:',
    '',
    rawRunsTable(result.cases),
    '',
    authReading(result),
    '',
  ].join('\n');
}

/** How far none's own speed moved between the first half of the rounds and the second, per case, in this run. */
function driftSentence(result: AuthResult): string {
  const half = Math.floor(result.rounds / 2);
  const each = result.cases.map((c) => {
    const none = (from: number, to: number) => median(c.runs.filter((r) => r.server === 'none' && r.round > from && r.round <= to).map((r) => r.mbpsStored ?? Number.NaN));
    return `${c.label} ${fmt(none(half, result.rounds) / none(0, half), 2)}x`;
  });
  return `in this run, none's median over its last ${result.rounds - half} rounds divided by that over its first ${half}: ${each.join(', ')}`;
}

/** What the server CPU says, following the numbers. */
function authReading(result: AuthResult): string {
  const parts = [`Load average when the benchmark ended (1 / 5 / 15 min): ${result.loadAfter}.`, 'Server CPU time from /proc/<pid>/stat (10 ms ticks), from the start to the moment every byte was stored, medians:'];
  for (const c of result.cases) {
    const cpu = (kind: AuthKind) => median(valuesOf(c.runs, kind, 'serverCpuStoredMs'));
    const ratios = c.roundRatios.filter(Number.isFinite);
    const spread = ratios.length > 0 ? `; the rounds' jwt / none ran from ${fmt(minimum(ratios), 3)}x to ${fmt(Math.max(...ratios), 3)}x` : '';
    parts.push(`${c.label}: none ${fmt(cpu('none'), 0)} ms, jwt ${fmt(cpu('jwt'), 0)} ms${spread}.`);
  }
  for (const c of result.cases.filter((c) => passes(c) === false)) {
    const none = valuesOf(c.runs, 'none', 'mbpsStored');
    const within = c.median.jwt >= minimum(none);
    parts.push(
      `${c.label} is under ${AUTH_TARGET}x (${fmt(c.ratio, 3)}x): jwt's median, ${fmt(c.median.jwt)} MB/s, is ${within ? 'within' : 'below'} the range of the none runs themselves (${fmt(minimum(none))} to ${fmt(Math.max(...none.filter(Number.isFinite)))} MB/s)${within ? ', so the gap is no larger than none\'s own run-to-run spread' : ''}.`,
    );
  }
  return parts.join(' ');
}

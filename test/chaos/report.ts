/** The chaos run's result: the counts table, the details of every upload that did not complete cleanly, and the exit verdict. */
import { textTable } from '../bench/table.ts';
import type { ClientRecord } from './client.ts';
import { nginxErrorKind, type TaggedLog } from './cluster.ts';
import type { ChaosConfig } from './config.ts';
import type { FaultEvent } from './faults.ts';
import type { Inventory } from './buckets.ts';
import { linesAbout, problemSummary } from './serverlog.ts';
import type { Verdict } from './verify.ts';
import { describePlan } from './workload.ts';

export interface RunFacts {
  config: ChaosConfig;
  records: ClientRecord[];
  verdicts: Verdict[];
  faults: FaultEvent[];
  /** Problems outside any one upload (a replacement that did not start, a Redis restart that failed): they fail the run. */
  harnessProblems: string[];
  /** Observations outside any one upload (a replacement start that failed and was retried). */
  notes: string[];
  inventory: Inventory | null;
  logs: TaggedLog[];
  stderrs: string[];
  /** nginx's error.log. */
  nginxErrors: string[];
  seconds: { setup: number; uploads: number; checks: number; total: number };
}

export interface Report {
  ok: boolean;
  text: string;
}

const idOf = (url: string | null) => url?.split('/').pop() ?? '-';

/** Distinct values with their counts, most frequent first. */
function counted(values: Iterable<string>): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

const tally = (values: Iterable<string>): string => counted(values).map(([value, n]) => `${value} x${n}`).join(', ');

const sum = (records: ClientRecord[], pick: (r: ClientRecord) => number) => records.reduce((n, r) => n + pick(r), 0);

function faultRow(events: FaultEvent[], kind: FaultEvent['kind']): string {
  const mine = events.filter((e) => e.kind === kind);
  const failed = mine.filter((e) => e.error).length;
  const ms = mine.map((e) => e.ms).sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)];
  return `${mine.length}${failed ? ` (${failed} failed)` : ''}${median === undefined ? '' : `, median ${(median / 1000).toFixed(1)} s down to up`}`;
}

export function buildReport(f: RunFacts): Report {
  const { records, verdicts } = f;
  const all = records.map((rec, i) => ({ rec, verdict: verdicts[i] }));
  const by = (outcome: Verdict['outcome']) => all.filter((x) => x.verdict?.outcome === outcome);
  const completed = by('completed');
  const resumed = by('resumed');
  const refused = by('refused');
  const failed = by('failure');
  const unchecked = all.filter((x) => !x.verdict);
  const wrong = all.filter((x) => x.verdict?.wrongBytes);
  const checks = verdicts.flatMap((v) => (v.check ? [v.check] : []));
  const clientSide = [...records, ...checks];
  const fiveXX = clientSide.flatMap((r) => r.fiveXX);
  const stalls = clientSide.flatMap((r) => r.stalls);
  const ok = failed.length === 0 && refused.length === 0 && wrong.length === 0 && unchecked.length === 0 && f.harnessProblems.length === 0;
  const expectedArtifacts = verdicts.filter((v) => v.published).length;

  const rows: string[][] = [
    ['seed', `${f.config.seed} (CHAOS_SEED=${f.config.seed} replays the plan; timing still varies)`],
    ['instances', `${f.config.instances} behind nginx, S3 staging + S3 public store on Ceph RGW, Redis (AOF)`],
    ['uploads', `${records.length} (${records.filter((r) => r.plan.mime === 'image/png').length} PNG, ${records.filter((r) => r.plan.data.length > 10 * 1024 * 1024).length} over 10 MiB)`],
    ['completed', String(completed.length)],
    ['resumed-after-check', String(resumed.length)],
    ['refused (valid images: failures)', refused.length ? `${refused.length}: ${tally(refused.map((x) => x.verdict?.code ?? '?'))}` : '0'],
    ['wrong bytes published (must be 0)', String(wrong.length)],
    ['failures (other than the two above)', String(failed.filter((x) => !x.verdict?.wrongBytes).length + unchecked.length)],
    ['faults injected', `${f.faults.length}: redis restarts ${faultRow(f.faults, 'redis-restart')}; instance kills ${faultRow(f.faults, 'instance-kill')}`],
    ['5xx seen by clients (retried)', fiveXX.length ? `${fiveXX.length}: ${tally(fiveXX.map((x) => `${x.method} ${x.status}`))}` : '0'],
    ['network errors seen by clients', String(sum(clientSide, (r) => r.networkErrors))],
    ['client retries', String(sum(clientSide, (r) => r.retries))],
    ['client cuts', `${sum(records, (r) => r.cuts.abort + r.cuts.raw)} (abort ${sum(records, (r) => r.cuts.abort)}, abort + raw cut PATCH ${sum(records, (r) => r.cuts.raw)})`],
    ['hangs', `${stalls.filter((s) => s.side === 'server').length} server (failures), ${stalls.filter((s) => s.side === 'client').length} client-side (tus-js-client waiting on a cut response)`],
    ['acknowledged offset lost', `${sum(records, (r) => r.ackLost.length)} (HEAD below an offset a PATCH had acknowledged; info)`],
    ['final response without artifact', `${all.filter((x) => x.rec.end === 'success' && (typeof x.rec.body !== 'object' || x.rec.body === null)).length} (client learnt completion from HEAD; asked /uploads/:id)`],
    [
      'public artifacts',
      f.inventory ? `${f.inventory.publicObjects} in the bucket for ${expectedArtifacts} uploads said done${f.inventory.publicObjects > expectedArtifacts ? ` (${f.inventory.publicObjects - expectedArtifacts} extra)` : ''}` : 'n/a',
    ],
    ['staging leftovers', f.inventory ? `${f.inventory.stagingObjects.length} objects, ${f.inventory.stagingMultipart.length} multipart uploads (info)` : 'n/a'],
    ['duration', `${f.seconds.total.toFixed(0)} s (setup ${f.seconds.setup.toFixed(0)}, uploads ${f.seconds.uploads.toFixed(0)}, checks ${f.seconds.checks.toFixed(0)})`],
    ['result', ok ? 'PASS' : 'FAIL'],
  ];

  const out: string[] = ['', textTable(['', ''], rows).split('\n').slice(2).join('\n')];

  if (f.harnessProblems.length > 0) out.push('', 'Problems outside the uploads (they fail the run):', ...f.harnessProblems.map((p) => `  - ${p}`));
  if (f.notes.length > 0) out.push('', 'Notes:', ...f.notes.map((n) => `  - ${n}`));

  const bad = all.filter((x) => !x.verdict || x.verdict.outcome === 'failure' || x.verdict.outcome === 'refused' || x.verdict.wrongBytes);
  for (const { rec, verdict } of bad) {
    const id = idOf(rec.url);
    out.push('', `${verdict?.wrongBytes ? 'WRONG BYTES' : (verdict?.outcome ?? 'unchecked').toUpperCase()} ${rec.plan.label} upload ${id}: ${describePlan(rec.plan)}`);
    for (const reason of verdict?.reasons ?? ['not checked']) out.push(`    - ${reason}`);
    const requestIds = new Set(clientSide.filter((r) => r.plan === rec.plan).flatMap((r) => r.fiveXX.flatMap((x) => (x.requestId ? [x.requestId] : []))));
    const trace = [...rec.trace, ...(verdict?.check ? ['-- check --', ...verdict.check.trace] : [])];
    out.push(`    client trace (last ${Math.min(trace.length, 30)} of ${trace.length}):`, ...trace.slice(-30).map((t) => `      ${t}`));
    const lines = id === '-' ? [] : linesAbout(f.logs, id, requestIds);
    if (lines.length > 0) out.push('    server warnings/errors about it:', ...lines.map((l) => `      ${l}`));
  }

  if (resumed.length > 0) {
    out.push('', 'Resumed by the check (the upload phase did not finish them):');
    for (const { rec, verdict } of resumed) out.push(`  ${rec.plan.label} ${idOf(rec.url)}: ${verdict?.reasons.join('; ')}`);
  }
  const lost = records.filter((r) => r.ackLost.length > 0);
  if (lost.length > 0) {
    out.push('', 'Acknowledged offsets lost (info; tus clients expect an acknowledged offset to stay):');
    for (const r of lost) {
      out.push(`  ${r.plan.label} ${idOf(r.url)}: ${r.ackLost.map((a) => a.text).join('; ')}`);
      const at = r.ackLost[0]?.trace ?? 0;
      out.push('    client trace around it:', ...r.trace.slice(Math.max(0, at - 8), at + 2).map((t) => `      ${t}`));
      const lines = linesAbout(f.logs, idOf(r.url), new Set(), 12, true);
      if (lines.length > 0) out.push('    server lines about it (requests left out):', ...lines.map((l) => `      ${l}`));
    }
  }
  const clientStalls = clientSide.filter((r) => r.stalls.some((s) => s.side === 'client'));
  if (clientStalls.length > 0) {
    out.push('', 'Client-side stalls (resumed; info):');
    for (const r of clientStalls) out.push(`  ${r.plan.label} ${idOf(r.url)}: ${r.stalls.map((s) => `${s.at} ms ${s.detail}`).join('; ')}`);
  }

  const leftovers = f.inventory ? [...f.inventory.stagingObjects, ...f.inventory.stagingMultipart.map((key) => `multipart:${key}`)] : [];
  if (leftovers.length > 0) {
    const label = new Map(records.map((r) => [idOf(r.url), r.plan.label]));
    out.push('', 'Left in the staging bucket after the checks (info):');
    for (const key of leftovers.slice(0, 20)) out.push(`  ${key}${label.has(key.replace(/^multipart:/, '').split('.')[0] ?? '') ? ` (${label.get(key.replace(/^multipart:/, '').split('.')[0] ?? '')})` : ''}`);
    if (leftovers.length > 20) out.push(`  ... ${leftovers.length - 20} more`);
  }

  const problems = problemSummary(f.logs);
  if (problems.length > 0) out.push('', 'Server warnings and errors over the run (grouped):', ...problems.map((p) => `  ${p}`));
  if (f.nginxErrors.length > 0) {
    out.push('', `nginx error.log (${f.nginxErrors.length} lines, grouped):`);
    out.push(...counted(f.nginxErrors.map(nginxErrorKind)).slice(0, 10).map(([kind, n]) => `${String(n).padStart(5)} x ${kind}`));
  }
  if (f.stderrs.length > 0) {
    out.push('', 'Server stderr (stack frames left out):', ...f.stderrs.slice(0, 30).map((s) => `  ${s}`));
    if (f.stderrs.length > 30) out.push(`  ... ${f.stderrs.length - 30} more distinct lines (all in the log dump)`);
  }
  return { ok, text: out.join('\n') };
}

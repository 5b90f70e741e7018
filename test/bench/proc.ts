/** What Linux tells about a process: /proc/<pid>/io and /proc/<pid>/status. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface IoCounters {
  /** Bytes the process read through read(2)-like calls (files, sockets, pipes). */
  rchar: number;
  /** Bytes the process wrote through write(2)-like calls (files, sockets, pipes). */
  wchar: number;
}

export function readIo(pid: number): IoCounters {
  const text = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rchar: field('rchar'), wchar: field('wchar') };
}

/** CPU time used by the process so far (user + system, and system alone), ms, and its minor page faults. */
export function readStat(pid: number): { cpuMs: number; sysMs: number; minorFaults: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the fields after the command name (which may hold spaces): minflt is field 10, utime 14, stime 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS, sysMs: (Number(fields[12]) * 1000) / CLOCK_TICKS, minorFaults: Number(fields[7]) };
}

/**
 * CPU time the hypervisor gave to others while this machine's vCPUs wanted to run (steal,
 * /proc/stat, all CPUs together), ms so far: a run that took steal shared its cores with
 * another machine, whatever the processes measured did.
 */
export function stealMs(): number {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/) ?? [];
  // cpu user nice system idle iowait irq softirq steal ...
  return (Number(cpu[8] ?? Number.NaN) * 1000) / CLOCK_TICKS;
}

export const cpuMs = (pid: number): number => readStat(pid).cpuMs;

/** The processes whose command line holds `fragment` (e.g. one Ceph cluster's config path). */
export function pidsWith(fragment: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(fragment))) pids.push(Number(entry));
    } catch {
      // it exited meanwhile
    }
  }
  return pids;
}

/** CPU ms of a set of processes so far; one that has exited counts what it had when last read (0 before). */
export function cpuOfAll(pids: number[]): () => number {
  const last = new Map<number, number>();
  return () => {
    let sum = 0;
    for (const pid of pids) {
      try {
        last.set(pid, readStat(pid).cpuMs);
      } catch {
        // exited: keep its last reading
      }
      sum += last.get(pid) ?? 0;
    }
    return sum;
  };
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

export interface Memory {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size since start or the last resetPeak, bytes. */
  hwm: number;
}

export function readMemory(pid: number): Memory {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux >= 4.0, needs the right to write clear_refs). */
export function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples VmRSS every `everyMs` and keeps the maximum, overall and per phase. The phase
 * switches to 'after-stored' once the process has written `storedBytes` bytes (wchar).
 */
export class RssSampler {
  max = 0;
  samples = 0;
  readonly phaseMax = { receive: 0, 'after-stored': 0 };
  phase: keyof RssSampler['phaseMax'] = 'receive';
  private readonly timer: NodeJS.Timeout;
  private readonly wchar0: number;

  constructor(
    private readonly pid: number,
    everyMs = 10,
    private readonly storedBytes = Number.POSITIVE_INFINITY,
  ) {
    this.wchar0 = readIo(pid).wchar;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): number {
    try {
      const { rss } = readMemory(this.pid);
      if (this.phase === 'receive' && readIo(this.pid).wchar - this.wchar0 >= this.storedBytes) this.phase = 'after-stored';
      this.samples += 1;
      if (rss > this.max) this.max = rss;
      if (rss > this.phaseMax[this.phase]) this.phaseMax[this.phase] = rss;
      return rss;
    } catch {
      return 0;
    }
  }

  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.max;
  }
}

/** Busy and total CPU ticks of the whole machine (/proc/stat's first line). */
function machineTicks(): { busy: number; total: number } {
  const fields = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, v) => sum + v, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

export interface Settled {
  /** How long it waited. */
  ms: number;
  /** Share of the machine's CPU that was busy in the last one-second sample. */
  busy: number;
  /** Whether that share was under `busyBelow` (false: it gave up after `maxMs`). */
  idle: boolean;
}

/**
 * Waits until the machine is idle: `sync` (the writeback of what came before, e.g. `npm ci`
 * and the build), then one-second samples of /proc/stat until two in a row are under
 * `busyBelow` of all cores, at most `maxMs`. The first benchmark measured right after a fresh
 * `npm ci` and build ran 2-3x the server CPU per byte in three of its five tusgate processes
 * (1.8x in one of the bare server's); none of the 20 tusgate processes of benchmark 7 in the
 * same run did, nor any of four runs of benchmark 1 alone afterwards. That the machine's
 * state caused it (what this waits out) is likely, not established.
 */
export async function settleMachine(busyBelow = 0.1, maxMs = 60_000): Promise<Settled> {
  const began = performance.now();
  execFileSync('sync');
  let calm = 0;
  let busy = 1;
  while (performance.now() - began < maxMs) {
    const a = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const b = machineTicks();
    busy = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 1;
    calm = busy < busyBelow ? calm + 1 : 0;
    if (calm >= 2) return { ms: performance.now() - began, busy, idle: true };
  }
  return { ms: performance.now() - began, busy, idle: false };
}

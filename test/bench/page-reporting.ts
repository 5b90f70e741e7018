/**
 * Free page reporting (virtio-balloon, /sys/module/page_reporting): a guest kernel tells the
 * host which page frames are free, and the host drops their memory. The first write into such
 * a frame then costs the host a page fault, which the guest counts as system time of whatever
 * wrote it. Measured on this Firecracker guest with dd (256 MiB into the page cache): 0.04 to
 * 0.07 s of system time into frames the host still backed, 0.5 to 0.75 s into reported ones.
 * Which frames a server's writes get depends on what the machine freed and when, so one
 * fresh process may write its 256 MiB ten times slower in the kernel than the next: the
 * kernel-time slow mode of benchmark 1 (docs/benchmarks.md, section 1).
 *
 * For its run the bench stops the reporting (a page_reporting_order above the largest buddy
 * order: no free block qualifies) and touches PREFAULT_BYTES of memory once in a child
 * process, so that the frames the servers get next are backed. The reporting order is put
 * back when the bench ends (also on Ctrl-C; a bench killed with SIGKILL leaves it stopped:
 * write the order it printed back into ORDER_FILE). BENCH_PAGE_REPORTING=keep leaves the
 * machine as it is. The memory touched is PREFAULT_BYTES, or half of what is free if that is less.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fmt } from './stats.ts';

const ORDER_FILE = '/sys/module/page_reporting/parameters/page_reporting_order';
/** Above the largest buddy order (MAX_PAGE_ORDER, 10 on x86-64): no free block is large enough to be reported. */
const ORDER_OFF = 11;
const MiB = 1024 * 1024;
/** Memory touched once after the reporting stops: more than the bench's servers, their files and Ceph hold at once. */
export const PREFAULT_BYTES = 6 * 1024 * MiB;
const PREFAULT_CHUNK = 256 * MiB;

export interface PageReporting {
  /** What the bench found and did, for the report. */
  note: string;
  /** Puts the reporting order back (idempotent; nothing when it was not changed). */
  restore(): void;
}

/** Touches `bytes` of fresh memory in a child process; its system time, ms (what the host's faults cost). */
function prefault(bytes: number): { ms: number; sysMs: number } {
  const script = `const kept = []; for (let n = 0; n < ${bytes}; n += ${PREFAULT_CHUNK}) { const b = Buffer.allocUnsafe(${PREFAULT_CHUNK}); b.fill(1); kept.push(b); } const u = process.resourceUsage(); process.stdout.write(JSON.stringify({ sys: u.systemCPUTime }));`;
  const began = performance.now();
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  const ms = performance.now() - began;
  if (child.status !== 0) throw new Error(`touching ${bytes / MiB} MiB failed: ${child.stderr}`);
  const parsed: unknown = JSON.parse(child.stdout);
  const sys = typeof parsed === 'object' && parsed !== null && 'sys' in parsed && typeof parsed.sys === 'number' ? parsed.sys : Number.NaN;
  return { ms, sysMs: sys / 1000 };
}

export function pausePageReporting(): PageReporting {
  const unchanged = (note: string): PageReporting => ({ note, restore() {} });
  if (process.env.BENCH_PAGE_REPORTING === 'keep') return unchanged('left as it is (BENCH_PAGE_REPORTING=keep)');
  if (!fs.existsSync(ORDER_FILE)) return unchanged('not on this machine');
  const was = fs.readFileSync(ORDER_FILE, 'utf8').trim();
  try {
    fs.writeFileSync(ORDER_FILE, String(ORDER_OFF));
  } catch (error) {
    return unchanged(`on (order ${was}); it could not be stopped (${error instanceof Error ? error.message : String(error)}), so runs may write into frames the host dropped`);
  }
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    fs.writeFileSync(ORDER_FILE, was);
  };
  try {
    const bytes = Math.min(PREFAULT_BYTES, Math.floor(os.freemem() / 2 / PREFAULT_CHUNK) * PREFAULT_CHUNK);
    const touched = prefault(bytes);
    return {
      note: `stopped for the run (page_reporting_order ${was} -> ${ORDER_OFF}, put back at the end); ${fmt(bytes / MiB / 1024, 1)} GiB touched once first, in ${fmt(touched.ms / 1000, 1)} s (${fmt(touched.sysMs / 1000, 1)} s of system time)`,
      restore,
    };
  } catch (error) {
    restore();
    throw error;
  }
}

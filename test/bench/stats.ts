/** Small numeric helpers and units: MB = 10^6 bytes, MiB = 2^20 bytes. */
import os from 'node:os';

/** The machine's 1 / 5 / 15-minute load averages, "0.52 / 0.61 / 0.70". */
export const loadAverages = (): string => os.loadavg().map((v) => v.toFixed(2)).join(' / ');
export const MB = 1e6;

export function median(values: readonly number[]): number {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The smallest finite value (NaN when there is none). */
export function minimum(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? Number.NaN : Math.min(...finite);
}

export function fmt(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `list` rotated for round `round` (1-based): each item takes each place in turn over the rounds. */
export function rotated<T>(list: readonly T[], round: number): T[] {
  const k = (round - 1) % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** "3x200 1x415": how many times each status (or error) was seen. */
export function countStatuses(statuses: ReadonlyArray<string | number>): string {
  const counts = new Map<string, number>();
  for (const status of statuses) counts.set(String(status), (counts.get(String(status)) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${n}x${status}`).join(' ');
}

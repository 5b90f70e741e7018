/** Reading the instances' JSON logs after the run: errors grouped, and the lines about one upload. */
import type { LogLine } from '../support/server.ts';
import type { TaggedLog } from './cluster.ts';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function errMessage(line: LogLine): string | undefined {
  const err = line.err;
  if (typeof err !== 'object' || err === null) return undefined;
  const message = 'message' in err ? err.message : undefined;
  const type = 'type' in err ? err.type : undefined;
  return typeof message === 'string' ? `${typeof type === 'string' ? `${type}: ` : ''}${message.split('\n')[0]}` : undefined;
}

const str = (value: unknown) => (typeof value === 'string' || typeof value === 'number' ? String(value) : undefined);

export function formatLine({ slot, generation, line }: TaggedLog): string {
  const time = str(line.time)?.slice(11, 23) ?? '';
  const fields = ['method', 'path', 'status', 'code', 'uploadId', 'reqId', 'ms']
    .map((key) => (str(line[key]) === undefined ? '' : `${key}=${str(line[key])}`))
    .filter(Boolean);
  const err = errMessage(line);
  return `i${slot}.${generation} ${time} ${LEVELS[line.level] ?? line.level} ${line.msg}${err ? ` [${err.slice(0, 240)}]` : ''} ${fields.join(' ')}`.trimEnd();
}

/** Warnings and errors, grouped by message (and error message or code), most frequent first. */
export function problemSummary(logs: TaggedLog[], minLevel = 40, limit = 15): string[] {
  const groups = new Map<string, { count: number; example: TaggedLog }>();
  for (const tagged of logs) {
    const { line } = tagged;
    if (line.level < minLevel) continue;
    // request lines of 4xx are the refusals and retries the clients already count
    if (line.msg === 'request' && Number(line.status) < 500) continue;
    const key = `${LEVELS[line.level] ?? line.level} ${line.msg} ${errMessage(line)?.slice(0, 160) ?? str(line.code) ?? (line.msg === 'request' ? `${str(line.method)} ${str(line.status)}` : '')}`;
    const group = groups.get(key);
    if (group) group.count += 1;
    else groups.set(key, { count: 1, example: tagged });
  }
  return [...groups.entries()]
    .sort((a, b) => b[1].count - a[1].count)
    .slice(0, limit)
    .map(([key, { count, example }]) => `${String(count).padStart(5)} x ${key}\n        e.g. ${formatLine(example)}`);
}

/**
 * Lines that name the upload (its id in any field) or one of the given request ids: warnings
 * and up, or with `all` every level but the per-request access lines.
 */
export function linesAbout(logs: TaggedLog[], id: string, requestIds: Set<string>, limit = 20, all = false): string[] {
  const found = logs.filter(({ line }) => {
    if (all ? line.msg === 'request' && line.level < 40 : line.level < 40) return false;
    if (typeof line.reqId === 'string' && requestIds.has(line.reqId)) return true;
    return Object.values(line).some((value) => typeof value === 'string' && value.includes(id));
  });
  const lines = found.map(formatLine);
  return lines.length > limit ? [...lines.slice(0, limit / 2), `... ${lines.length - limit} more ...`, ...lines.slice(-limit / 2)] : lines;
}

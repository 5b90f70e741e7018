/**
 * The servers under test, as child processes on loopback: tusgate (the real server, via
 * test/support/server.ts) and the bare @tus/server baseline (baseline-server.ts). Every
 * child started here is stopped by stopAll(), also when the run is interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, ROOT, startServer, type LogLine } from '../support/server.ts';

export interface Target {
  name: 'tusgate' | 'baseline';
  endpoint: string;
  pid: number;
  dataDir: string;
  /** The server's JSON log lines (tusgate only; the baseline logs nothing per request). */
  logs: LogLine[];
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

const running = new Set<Target>();

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** tusgate as configured for the benchmarks: production log level, room for 1 GiB uploads. */
export const TUSGATE_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'info',
  MAX_UPLOAD_BYTES: String(2 * GiB),
  // a refused client is dropped after this long (lingering close); the default
  REFUSAL_LINGER_MS: '1000',
  // one client makes every upload of a benchmark: what anyone may cost is not measured here
  RATE_LIMIT_CREATES_PER_MIN: '0',
  MAX_ACTIVE_UPLOADS: '0',
  QUOTA_BYTES_PER_DAY: '0',
};

export async function startTusgate(dataDir: string, env: Record<string, string> = {}): Promise<Target> {
  fs.mkdirSync(dataDir, { recursive: true });
  const server = await startServer({ dataDir, env: { ...TUSGATE_ENV, ...env } });
  const pid = server.process.pid;
  if (pid === undefined) throw new Error('tusgate child has no pid');
  const target: Target = {
    name: 'tusgate',
    endpoint: server.endpoint,
    pid,
    dataDir,
    logs: server.logs,
    waitForLog: (match, timeoutMs) => server.waitForLog(match, timeoutMs),
    async stop() {
      running.delete(target);
      await server.stop('SIGTERM');
    },
  };
  running.add(target);
  return target;
}

/** Bare @tus/server on FileStore under `dataDir`; `env` with BENCH_STORE=s3 and S3 settings puts it on S3Store. */
export async function startBaseline(dataDir: string, env: Record<string, string> = {}): Promise<Target> {
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join('test', 'bench', 'baseline-server.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), BENCH_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`baseline did not start: ${stderr}`)), 30_000);
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      if (text.includes('baseline listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`baseline exited (${code}): ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const target: Target = {
    name: 'baseline',
    endpoint: `http://127.0.0.1:${port}/files/`,
    pid: child.pid ?? 0,
    dataDir,
    logs: [],
    waitForLog: () => Promise.reject(new Error('the baseline has no logs')),
    async stop() {
      running.delete(target);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(target);
  return target;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((target) => target.stop().catch(() => {})));
}

/**
 * The servers under test, as child processes on loopback: tusgate (the real server, via
 * test/support/server.ts), the bare @tus/server baseline (baseline-server.ts), the plain
 * Node http -> fs writer (plain-server.ts) and its S3 counterpart, the http -> PutObject hop
 * (s3-hop-server.ts). Every child started here is stopped by stopAll(), also when the run
 * is interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, ROOT, startServer, type LogLine } from '../support/server.ts';

/** A running server; `Name` defaults to the two every benchmark has (the plain writer is benchmark 1's alone). */
export interface Target<Name extends string = 'tusgate' | 'baseline'> {
  name: Name;
  endpoint: string;
  pid: number;
  dataDir: string;
  /** The server's JSON log lines (tusgate only; the baseline and plain log nothing per request). */
  logs: LogLine[];
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

const running = new Set<Target<string>>();

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
export function startBaseline(dataDir: string, env: Record<string, string> = {}): Promise<Target> {
  return startBenchServer('baseline', 'baseline-server.ts', dataDir, env);
}

/** The plain Node http -> fs writer (plain-server.ts), files under `dataDir`. */
export function startPlain(dataDir: string): Promise<Target<'plain'>> {
  return startBenchServer('plain', 'plain-server.ts', dataDir, {});
}

/** The plain Node http -> PutObject hop (s3-hop-server.ts); `env` has the S3 settings, and HOP_RECORD=1 for the `.info` at creation. */
export function startHop(env: Record<string, string>): Promise<Target<'hop'>> {
  return startBenchServer('hop', 's3-hop-server.ts', '', env);
}

/** One of test/bench's own servers as `node --import tsx test/bench/<script>`; ready when it prints `<name> listening`. */
async function startBenchServer<Name extends 'baseline' | 'plain' | 'hop'>(name: Name, script: string, dataDir: string, env: Record<string, string>): Promise<Target<Name>> {
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join('test', 'bench', script)], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), BENCH_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within 30 s: ${stderr}`));
    }, 30_000);
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      if (text.includes(`${name} listening`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}): ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const target: Target<Name> = {
    name,
    endpoint: `http://127.0.0.1:${port}/files/`,
    pid: child.pid ?? 0,
    dataDir,
    logs: [],
    waitForLog: () => Promise.reject(new Error(`the ${name} server has no logs`)),
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

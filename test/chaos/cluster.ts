/**
 * What the chaos run starts on top of Ceph RGW (startBackends): its own Redis, which it can
 * restart (deploy/services/redis.sh, AOF), N tusgate instances on fixed ports, which it can
 * SIGKILL and replace on the same port, and nginx in front of them. Everything started here
 * is stopped by stop(), also after a failure.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, ROOT, startServer, tempDir, type LogLine, type RunningServer } from '../support/server.ts';
import { startNginx, type Nginx, type Services } from '../support/services.ts';

const run = promisify(execFile);
const REDIS_SCRIPT = path.join(ROOT, 'deploy', 'services', 'redis.sh');

async function redisScript(action: 'start' | 'restart' | 'stop', dir: string, env: Record<string, string> = {}): Promise<void> {
  try {
    await run('bash', [REDIS_SCRIPT, action, dir], { env: { ...process.env, ...env }, timeout: 120_000 });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`redis.sh ${action} failed: ${stderr ?? String(error)}`);
  }
}

export class OwnRedis {
  private constructor(
    readonly dir: string,
    readonly url: string,
  ) {}

  static async start(dir: string): Promise<OwnRedis> {
    const port = await freePort();
    await redisScript('start', dir, { REDIS_PORT: String(port) });
    const env = fs.readFileSync(path.join(dir, 'env'), 'utf8');
    const url = /^REDIS_URL=(.+)$/m.exec(env)?.[1]?.trim();
    if (!url) throw new Error(`no REDIS_URL in ${dir}/env`);
    return new OwnRedis(dir, url);
  }

  /** SIGTERM (a clean shutdown that writes the AOF), then the same server on the same port and data. */
  restart(): Promise<void> {
    return redisScript('restart', this.dir);
  }

  stop(): Promise<void> {
    return redisScript('stop', this.dir);
  }
}

/** One instance slot: a fixed port, and the processes that have served it one after the other. */
export interface Slot {
  index: number;
  port: number;
  current: RunningServer | null;
  /** Every process this slot has run, the current one last (their logs stay readable). */
  generations: RunningServer[];
  busy: boolean;
}

export interface TaggedLog {
  slot: number;
  generation: number;
  line: LogLine;
}

/** The AWS SDK's multi-line NodeVersionSupportWarning, printed by every process on Node 20. */
function withoutSdkNotice(stderr: string): string {
  return stderr.replace(/\(node:\d+\) Warning: NodeVersionSupportWarning:[\s\S]*?to show where the warning was created\)\n?/g, '');
}

export class Instances {
  readonly slots: Slot[];
  private readonly dirs: string[] = [];

  private constructor(
    private readonly env: Record<string, string>,
    ports: number[],
  ) {
    this.slots = ports.map((port, index) => ({ index, port, current: null, generations: [], busy: false }));
  }

  static async start(count: number, env: Record<string, string>): Promise<Instances> {
    const ports: number[] = [];
    while (ports.length < count) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    const instances = new Instances(env, ports);
    await Promise.all(instances.slots.map((slot) => instances.launch(slot)));
    return instances;
  }

  private async launch(slot: Slot): Promise<RunningServer> {
    const dataDir = tempDir(`tusgate-chaos-i${slot.index}-`);
    this.dirs.push(dataDir);
    const server = await startServer({ port: slot.port, dataDir, env: this.env });
    slot.current = server;
    slot.generations.push(server);
    return server;
  }

  up(): Slot[] {
    return this.slots.filter((slot) => slot.current !== null && !slot.busy);
  }

  /** SIGKILLs the slot's process (resolves when it is gone). */
  async kill(slot: Slot): Promise<void> {
    const server = slot.current;
    slot.current = null;
    if (server) await server.stop('SIGKILL');
  }

  /**
   * Starts a new process on the slot's port (a fresh data dir: a replacement, not the same
   * disk). Retries a start that fails (the port still held, a dependency down) a few times;
   * the failed attempts are returned with their stderr.
   */
  async replace(slot: Slot, attempts = 5): Promise<string[]> {
    const failures: string[] = [];
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.launch(slot);
        return failures;
      } catch (error) {
        failures.push(error instanceof Error ? error.message.slice(0, 600) : String(error));
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
    throw new Error(`slot ${slot.index} (port ${slot.port}) did not come back after ${attempts} starts:\n${failures.join('\n')}`);
  }

  /** Every log line of every process, tagged with its slot and generation, in the order of their timestamps. */
  logs(): TaggedLog[] {
    const time = (tagged: TaggedLog) => (typeof tagged.line.time === 'string' ? tagged.line.time : '');
    return this.slots
      .flatMap((slot) => slot.generations.flatMap((server, generation) => server.logs.map((line) => ({ slot: slot.index, generation, line }))))
      .sort((a, b) => (time(a) < time(b) ? -1 : time(a) > time(b) ? 1 : 0));
  }

  /**
   * What the processes wrote to stderr (but the AWS SDK's notice about Node versions), stack
   * frames left out and repeated lines counted: "i<slot>.<generation>: N x line".
   */
  stderrs(): string[] {
    const counts = new Map<string, number>();
    this.slots.forEach((slot) =>
      slot.generations.forEach((server, generation) => {
        for (const line of withoutSdkNotice(server.stderr()).split('\n')) {
          if (!line.trim() || /^\s/.test(line)) continue;
          const key = `i${slot.index}.${generation}: ${line.slice(0, 300)}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }),
    );
    return [...counts.entries()].map(([line, n]) => `${String(n).padStart(4)} x ${line}`);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.slots.flatMap((slot) => slot.generations.map((server) => server.stop('SIGKILL'))));
    for (const slot of this.slots) slot.current = null;
    for (const dir of this.dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** nginx's error.log lines of the run (startNginx puts nginx under services.scratch/nginx-*). */
export function nginxErrorLog(services: Services): string[] {
  if (!fs.existsSync(services.scratch)) return [];
  return fs
    .readdirSync(services.scratch)
    .filter((name) => name.startsWith('nginx-'))
    .flatMap((name) => {
      const file = path.join(services.scratch, name, 'error.log');
      return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    });
}

/** An nginx error line without its time, pids, connection number and client details, plus the request's method: what to count. */
export function nginxErrorKind(line: string): string {
  const method = /request: "(\w+) /.exec(line)?.[1];
  const message = line
    .replace(/^\S+ \S+ /, '')
    .replace(/\d+#\d+: (\*\d+ )?/, '')
    .replace(/, client: .*$/, '');
  return method ? `${message} (${method})` : message;
}

export async function startProxy(services: Services, instances: Instances): Promise<Nginx> {
  return startNginx(
    services,
    instances.slots.map((slot) => slot.port),
  );
}

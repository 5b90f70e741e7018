/** The command-line tools the benchmarks compare against, from Debian's packages (installed when missing; root). */
import { execFileSync } from 'node:child_process';

export interface Tool {
  ok: boolean;
  note: string;
}

const has = (command: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
};

/** Finds `command`, installing Debian's `pkg` with apt-get if it is missing. */
export function ensureDebianTool(command: string, pkg: string, log: (line: string) => void): Tool {
  if (has(command)) return { ok: true, note: `${command} was already installed` };
  log(`  ${command} missing: apt-get update && apt-get install -y ${pkg}`);
  try {
    execFileSync('apt-get', ['update'], { stdio: 'pipe', timeout: 180_000 });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], {
      stdio: 'pipe',
      timeout: 300_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (error) {
    return { ok: false, note: `installing ${pkg} failed: ${String(error instanceof Error ? error.message : error).split('\n')[0]}` };
  }
  return has(command) ? { ok: true, note: `installed ${pkg} with apt-get` } : { ok: false, note: `${pkg} installed but no ${command}` };
}

export const ensureVipsthumbnail = (log: (line: string) => void): Tool => ensureDebianTool('vipsthumbnail', 'libvips-tools', log);
export const ensureAvifenc = (log: (line: string) => void): Tool => ensureDebianTool('avifenc', 'libavif-bin', log);

/** The environment for Debian's vips CLI: one thread, and without the VIPSHOME that importing sharp sets (it breaks the CLI). */
export function vipsEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, VIPS_CONCURRENCY: '1' };
  delete env.VIPSHOME;
  return env;
}

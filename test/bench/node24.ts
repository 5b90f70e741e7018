/**
 * The bench measures Node 24 LTS, the runtime the README recommends. On an older Node it
 * installs the registry's `node@24` package where .ci/run does (`$TMPDIR/tusgate-node24`)
 * and runs itself again there, so that every server it starts runs on Node 24 too.
 * BENCH_ANY_NODE=1 measures the Node that runs it instead.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function runOnNode24(script: string, argv: string[]): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24 || process.env.BENCH_ANY_NODE === '1') return;
  const dir = path.join(os.tmpdir(), 'tusgate-node24');
  const node = path.join(dir, 'node_modules', '.bin', 'node');
  if (!fs.existsSync(node)) {
    process.stdout.write(`Node ${process.version} here: installing Node 24 LTS (npm's node@24) into ${dir}\n`);
    execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', 'node@24'], { stdio: 'inherit' });
  }
  process.stdout.write(`Node ${process.version} here: the bench runs again on Node 24 LTS (${node}); BENCH_ANY_NODE=1 keeps this one\n`);
  const result = spawnSync(node, ['--import', 'tsx', script, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` },
  });
  process.exit(result.status ?? 1);
}

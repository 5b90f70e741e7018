/**
 * The deployment files (deploy/container/Dockerfile, deploy/compose.yaml, deploy/.env.example,
 * .dockerignore, deploy/container/*, deploy/systemd/tusgate.service), checked without a
 * container engine: none runs on this machine (`docker` here is the client alone), so the image
 * was never built and the compose file never started. What can be checked is checked:
 *
 * - compose.yaml against the Compose Specification's JSON schema (schemas/compose.schema.json
 *   of the `dclint` package, the compose-spec repository's schema/compose-spec.json of July
 *   2025; no file is fetched at test time), its variables against .env.example, its tusgate
 *   environment against tusgate's own configuration (loadConfig accepts it);
 * - the Dockerfile, parsed line by line: what it copies exists and passes .dockerignore, the npm
 *   scripts it runs exist, its CMD is `npm start`'s command on the build's entry point; its build
 *   stage is replayed in a scratch folder from the copied files alone, the runtime layout serves,
 *   and its HEALTHCHECK command is run against it;
 * - the parts of compose.yaml that run on any machine: nginx's entrypoint script renders the
 *   template and proxies to a real tusgate; the webhook receiver with its preload;
 * - the systemd unit with systemd-analyze verify.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createServer } from 'node:http';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, profilesOf } from '../../server/config.ts';
import { ROOT, freePort, startArgs, startEnv, startServer, tempDir } from '../support/server.ts';

const run = promisify(execFile);
const DEPLOY = path.join(ROOT, 'deploy');
const DOCKERFILE = path.join(DEPLOY, 'container', 'Dockerfile');
const COMPOSE = path.join(DEPLOY, 'compose.yaml');
const read = (file: string) => fs.readFileSync(path.isAbsolute(file) ? file : path.join(ROOT, file), 'utf8');
const exists = (file: string) => fs.existsSync(path.join(ROOT, file));
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; dependencies: Record<string, string> };
/** tusgate's configuration variables: the keys of the zod schema in server/config.ts. */
const CONFIG_VARIABLES = new Set(Object.keys(loadConfig({})).filter((key) => /^[A-Z][A-Z0-9_]+$/.test(key)));
/** Read by the AWS SDK's default credential chain (storage/s3-client.ts), not by tusgate's config. */
const SDK_VARIABLES = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);

// ---------------------------------------------------------------- the Dockerfile, parsed simply

interface Instruction {
  keyword: string;
  args: string;
  /** The name of the stage (FROM ... AS name) the instruction belongs to; '' before the first FROM. */
  stage: string;
  line: number;
}

/** Line-based: comment lines are dropped (also inside a continuation, as Docker does), `\` joins lines. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage = '';
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) return;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const match = /^(\S+)\s*(.*)$/.exec(full);
    if (!match?.[1]) return;
    const keyword = match[1].toUpperCase();
    const args = match[2] ?? '';
    if (keyword === 'FROM') stage = /\sAS\s+(\S+)$/i.exec(args)?.[1] ?? `#${instructions.filter((i) => i.keyword === 'FROM').length}`;
    instructions.push({ keyword, args, stage, line: start });
  });
  return instructions;
}

const DOCKER = parseDockerfile(read(DOCKERFILE));
const inStage = (stage: string, keyword: string) => DOCKER.filter((i) => i.stage === stage && i.keyword === keyword);
const only = <T,>(items: T[], what: string): T => {
  expect(items, what).toHaveLength(1);
  return items[0] as T;
};

function execForm(args: string): string[] {
  expect(args.startsWith('['), `exec form (a JSON array): ${args}`).toBe(true);
  const parsed = JSON.parse(args) as unknown;
  expect(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string')).toBe(true);
  return parsed as string[];
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
  line: number;
}

function copyOf(instruction: Instruction): Copy {
  const words = instruction.args.startsWith('[') ? execForm(instruction.args) : instruction.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1) ?? '', line: instruction.line };
}

const copies = (stage: string) => inStage(stage, 'COPY').map(copyOf);
const workdir = (stage: string) => inStage(stage, 'WORKDIR').at(-1)?.args ?? '/';

/** ENV KEY=VALUE [KEY=VALUE...] of a stage (no quotes or spaces in the values here). */
function envOf(stage: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of inStage(stage, 'ENV')) {
    for (const pair of args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      expect(eq, `ENV ${args}: KEY=VALUE pairs`).toBeGreaterThan(0);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** The `npm run X` scripts a RUN line names. */
const npmRuns = (stage: string) => inStage(stage, 'RUN').flatMap(({ args }) => [...args.matchAll(/\bnpm\s+run(?:-script)?\s+(?:--?\S+\s+)*([\w:.-]+)/g)].map((m) => m[1] ?? ''));

// ------------------------------------------------------------------------------ .dockerignore

/** Docker's rules: patterns are relative to the context root (no implicit `**\/`), `**` crosses folders, the last match wins. */
function dockerignore(): (file: string) => boolean {
  const rules = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = path.posix.normalize((negate ? line.slice(1) : line).replace(/^\/+/, ''));
      const source = pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) => (part === '**/' ? '(?:.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return { negate, regex: new RegExp(`^${source}$`) };
    });
  return (file) => {
    const parts = path.posix.normalize(file).split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((p) => rule.regex.test(p))) excluded = !rule.negate;
    return excluded;
  };
}
const ignored = dockerignore();

function filesUnder(relative: string): string[] {
  const full = path.join(ROOT, relative);
  if (!fs.statSync(full).isDirectory()) return [path.posix.normalize(relative)];
  return fs.readdirSync(full, { recursive: true, withFileTypes: true }).flatMap((entry) =>
    entry.isFile() ? [path.posix.join(path.relative(ROOT, entry.parentPath).split(path.sep).join('/'), entry.name)] : [],
  );
}

/** Docker's COPY into a scratch folder standing for the stage's WORKDIR: a folder's contents, a file into a folder dest. */
function replayCopy(fromRoot: string, toRoot: string, copy: Copy, skip: (file: string) => boolean = () => false): void {
  for (const source of copy.sources) {
    const from = path.join(fromRoot, source);
    const isDir = fs.statSync(from).isDirectory();
    const dest = path.join(toRoot, isDir || !copy.dest.endsWith('/') ? copy.dest : path.join(copy.dest, path.basename(source)));
    fs.cpSync(from, dest, { recursive: true, filter: (file) => !skip(path.relative(fromRoot, file).split(path.sep).join('/')) });
  }
}

// ------------------------------------------------------------------------ compose, .env.example

type Yaml = unknown;
const COMPOSE_TEXT = read(COMPOSE);
const compose = parse(COMPOSE_TEXT, { merge: true }) as {
  services: Record<string, Record<string, unknown> & { environment?: Record<string, string>; volumes?: string[] }>;
};
const services = compose.services;

const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Compose's interpolation: `$$` is a literal `$`; ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}, ${X:+alt}, $X. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(VARIABLE, (match, braced?: string, op?: string, arg?: string, bare?: string) => {
    if (match === '$$') return '$';
    const name = braced ?? bare ?? '';
    const value = env[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (op) {
      case ':-':
        return nonEmpty ? value : (arg ?? '');
      case '-':
        return set ? value : (arg ?? '');
      case ':?':
      case '?':
        if (op === ':?' ? !nonEmpty : !set) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return value ?? '';
      case ':+':
        return nonEmpty ? (arg ?? '') : '';
      case '+':
        return set ? (arg ?? '') : '';
      default:
        return value ?? '';
    }
  });
}

function mapStrings(value: Yaml, fn: (s: string) => string): Yaml {
  if (typeof value === 'string') return fn(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, fn));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, fn)]));
  return value;
}

/** Every `${X...}` / `$X` a value of compose.yaml refers to (comments are not values; `$$X` is the container's). */
function references(value: Yaml): Map<string, string[]> {
  const found = new Map<string, string[]>();
  mapStrings(value, (s) => {
    for (const m of s.matchAll(VARIABLE)) {
      if (m[0] === '$$') continue;
      const name = m[1] ?? m[4] ?? '';
      found.set(name, [...(found.get(name) ?? []), m[2] ?? '']);
    }
    return s;
  });
  return found;
}

interface EnvExample {
  values: Record<string, string>;
  /** The shell command in the comment block above an empty variable, e.g. `openssl rand -hex 32`. */
  recipes: Record<string, string>;
}

function envExample(): EnvExample {
  const values: Record<string, string> = {};
  const recipes: Record<string, string> = {};
  let recipe: string | undefined;
  for (const raw of read('deploy/.env.example').split('\n')) {
    const line = raw.trim();
    if (line === '') recipe = undefined;
    else if (line.startsWith('#')) {
      const command = /^#\s+(.*\bopenssl\b.*)$/.exec(line)?.[1];
      if (command) recipe = command.trim();
    } else {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      expect(match, `deploy/.env.example: "${line}" is not KEY=value`).toBeTruthy();
      if (!match?.[1]) continue;
      values[match[1]] = match[2] ?? '';
      if (match[2] === '' && recipe) recipes[match[1]] = recipe;
    }
  }
  return { values, recipes };
}

let filled: Promise<Record<string, string>> | undefined;

/** .env.example with each empty secret made by its own recipe (openssl, as a person would run it), once per run. */
function filledEnv(): Promise<Record<string, string>> {
  filled ??= (async () => {
    ensurePackage('openssl', 'openssl');
    const { values, recipes } = envExample();
    const env = { ...values };
    for (const [name, recipe] of Object.entries(recipes)) env[name] = (await run('sh', ['-c', recipe])).stdout.trim();
    return env;
  })();
  return filled;
}

const TUSGATE_SERVICES = Object.entries(services)
  .filter(([, service]) => (service.build as { dockerfile?: string } | undefined)?.dockerfile !== undefined && service.command === undefined)
  .map(([name]) => name);

/** The environment a tusgate container gets: the image's ENV, then compose's. */
async function tusgateEnv(name: string): Promise<Record<string, string>> {
  const env = await filledEnv();
  const composed = mapStrings(services[name]?.environment ?? {}, (s) => interpolate(s, env)) as Record<string, string>;
  return { ...envOf('runtime'), ...composed };
}

const hostPort = (url: string) => {
  const u = new URL(url);
  return { host: u.hostname, port: u.port };
};

// ------------------------------------------------------------------------------ processes

function ensurePackage(command: string, ...packages: string[]): void {
  // the same helper the service scripts use: apt-get install when the command is missing
  execFileSync('bash', ['-c', '. "$1"; shift; ensure_packages "$@"', '_', path.join(DEPLOY, 'services', 'lib.sh'), command, ...packages], {
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600_000,
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function collect(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (t: string) => (output += t));
  child.stderr?.setEncoding('utf8').on('data', (t: string) => (output += t));
  return () => output;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (child.pid !== undefined) process.kill(child.pid, signal);
  return exited;
}

/** The Dockerfile's HEALTHCHECK command, run here with `node` as this process's node. */
async function healthcheck(port: number): Promise<number> {
  const instruction = only(inStage('runtime', 'HEALTHCHECK'), 'one HEALTHCHECK');
  const command = execForm(instruction.args.replace(/^(--\S+\s+)*CMD\s+/, ''));
  expect(command[0]).toBe('node');
  try {
    await run(process.execPath, command.slice(1), { env: { ...process.env, PORT: String(port) }, timeout: 10_000 });
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

// ================================================================================== the tests

describe('deploy/container/Dockerfile', () => {
  it('builds in two stages on Node 24 LTS slim, the runtime one running as a non-root user', () => {
    const froms = DOCKER.filter((i) => i.keyword === 'FROM');
    expect(froms.map((i) => i.stage)).toEqual(['build', 'runtime']);
    const args = Object.fromEntries(inStage('', 'ARG').map(({ args }) => [args.split('=')[0], args.split('=')[1] ?? '']));
    for (const from of froms) {
      const image = from.args.split(/\s+/)[0]?.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? '');
      expect(image).toMatch(/^node:24(\.\d+)*(-bookworm)?-slim$/);
    }
    const runtime = DOCKER.filter((i) => i.stage === 'runtime');
    const user = runtime.filter((i) => i.keyword === 'USER').at(-1);
    expect(user?.args).toBeDefined();
    expect(['root', '0']).not.toContain(user?.args.split(':')[0]);
    expect(runtime.indexOf(user as Instruction)).toBeLessThan(runtime.findIndex((i) => i.keyword === 'CMD'));
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const local = DOCKER.filter((i) => i.keyword === 'COPY').map(copyOf).filter((c) => c.from === undefined);
    expect(local.length).toBeGreaterThan(5);
    for (const copy of local) {
      for (const source of copy.sources) {
        expect(exists(source), `COPY ${source} (line ${copy.line}) exists`).toBe(true);
        const files = filesUnder(source);
        expect(files.length, `COPY ${source} copies something`).toBeGreaterThan(0);
        expect(files.filter(ignored), `COPY ${source} (line ${copy.line}): excluded by .dockerignore`).toEqual([]);
      }
    }
    // and the context leaves out what is local, generated or secret
    for (const file of ['node_modules/zod/package.json', 'dist/server/main.js', 'data/x', '.git/HEAD', 'deploy/.env', 'server/x.log']) {
      expect(ignored(file), `.dockerignore excludes ${file}`).toBe(true);
    }
    expect(ignored('deploy/.env.example')).toBe(false);
  });

  it('copies from the build stage only what `npm run build` produces there', () => {
    const fromBuild = copies('runtime').filter((c) => c.from !== undefined);
    expect(fromBuild.length).toBeGreaterThan(0);
    const tsconfig = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir: string } };
    const outDir = path.posix.join(workdir('build'), tsconfig.compilerOptions.outDir);
    for (const copy of fromBuild) {
      expect(copy.from).toBe('build');
      for (const source of copy.sources) expect(path.posix.normalize(source).replace(/\/$/, ''), `COPY --from=build ${source}`).toBe(outDir);
    }
    expect(npmRuns('build')).toContain('build');
  });

  it('runs only npm scripts that package.json has, and installs production dependencies only at run time', () => {
    const scripts = [...npmRuns('build'), ...npmRuns('runtime')];
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect(pkg.scripts[script], `npm run ${script}`).toBeDefined();
    const installs = (stage: string) => inStage(stage, 'RUN').filter(({ args }) => /\bnpm (ci|install|i)\b/.test(args));
    expect(only(installs('build'), 'one install in build').args).toMatch(/\bnpm ci\b/);
    expect(only(installs('build'), 'one install in build').args).not.toMatch(/--omit=dev|--production/);
    expect(only(installs('runtime'), 'one install in runtime').args).toMatch(/\bnpm ci\b.*--omit=dev/);
    // the lock file the installs use is copied before them
    for (const stage of ['build', 'runtime']) expect(copies(stage)[0]?.sources).toEqual(['package.json', 'package-lock.json']);
  });

  it("runs what `npm start` runs (node, its flags, the build's entry point), stopping on SIGTERM", () => {
    const cmd = execForm(only(inStage('runtime', 'CMD'), 'one CMD').args);
    expect(cmd).toEqual(['node', ...startArgs()]);
    expect(inStage('runtime', 'ENTRYPOINT')).toEqual([]);
    const entry = cmd.at(-1) ?? '';
    expect(entry).toBe('dist/server/main.js');
    // what the build makes: tsconfig.build.json maps server/main.ts to dist/server/main.js (the suite's setup built it)
    expect(exists('server/main.ts')).toBe(true);
    expect(exists(entry), `${entry} after npm run build`).toBe(true);
    expect(only(inStage('runtime', 'STOPSIGNAL'), 'STOPSIGNAL').args).toBe('SIGTERM');
  });

  it('has every file under server/, hooks/ and storage/ that tsc does not emit (the demo page), where the code reads it', () => {
    const assets = ['server', 'hooks', 'storage'].flatMap(filesUnder).filter((file) => !file.endsWith('.ts'));
    const local = copies('runtime').filter((c) => c.from === undefined);
    for (const asset of assets) {
      const copied = local.some((c) =>
        c.sources.some((s) => {
          const source = path.posix.normalize(s).replace(/\/$/, '');
          return (asset === source || asset.startsWith(`${source}/`)) && path.posix.normalize(c.dest).replace(/\/$/, '') === source;
        }),
      );
      expect(copied, `${asset} is copied to the same path in the runtime stage`).toBe(true);
    }
  });

  it('has at run time every package dist/ imports: production dependencies only (npm ci --omit=dev)', () => {
    const imported = new Set<string>();
    for (const file of filesUnder('dist').filter((f) => f.endsWith('.js'))) {
      const code = read(file);
      for (const m of code.matchAll(/\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]|\.resolve\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
        const specifier = m[1] ?? m[2] ?? m[3] ?? m[4] ?? '';
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
        const parts = specifier.split('/');
        imported.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
      }
    }
    expect(imported.size).toBeGreaterThan(10);
    expect([...imported].filter((name) => pkg.dependencies[name] === undefined)).toEqual([]);
  });

  it("sets only tusgate's own variables, and the image alone refuses to start on its HOST without AUTH_MODE", () => {
    const env = envOf('runtime');
    expect(env).toMatchObject({ HOST: '0.0.0.0', DATA_DIR: '/data', NODE_ENV: 'production' });
    // npm start's own environment (MALLOC_ARENA_MAX) is set as npm start sets it
    expect(env).toMatchObject(startEnv());
    expect(Object.keys(env).filter((n) => n !== 'NODE_ENV' && !CONFIG_VARIABLES.has(n) && !(n in startEnv()))).toEqual([]);
    expect(inStage('runtime', 'VOLUME').map((i) => i.args)).toEqual([env.DATA_DIR]);
    expect(inStage('runtime', 'EXPOSE').map((i) => i.args)).toEqual([env.PORT]);
    expect(() => loadConfig(env)).toThrow(/AUTH_MODE/);
    expect(loadConfig({ ...env, AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'x'.repeat(32) }).HOST).toBe('0.0.0.0');
  });

  it('replayed without Docker: the build stage builds from its copied files alone; the runtime layout serves; the HEALTHCHECK command tells ready from not', async () => {
    const scratch = tempDir('tusgate-docker-replay-');
    try {
      // build stage: its COPYs (through .dockerignore), node_modules standing for `npm ci`, its RUN npm run build
      const build = path.join(scratch, 'build');
      fs.mkdirSync(build);
      for (const copy of copies('build')) replayCopy(ROOT, build, copy, ignored);
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(build, 'node_modules'));
      for (const script of npmRuns('build')) execFileSync('npm', ['run', '--silent', script], { cwd: build, stdio: ['ignore', 'pipe', 'inherit'] });
      expect(fs.existsSync(path.join(build, 'dist', 'server', 'main.js'))).toBe(true);

      // runtime stage: its COPYs, from the context and from the build stage
      const runtime = path.join(scratch, 'runtime');
      fs.mkdirSync(runtime);
      for (const copy of copies('runtime')) {
        if (copy.from === 'build') replayCopy(build, runtime, { ...copy, sources: copy.sources.map((s) => path.posix.relative(workdir('build'), s)) });
        else replayCopy(ROOT, runtime, copy, ignored);
      }
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(runtime, 'node_modules'));
      const port = await freePort();
      const cmd = execForm(only(inStage('runtime', 'CMD'), 'CMD').args);
      const child = spawn(process.execPath, cmd.slice(1), {
        cwd: runtime,
        // the image's environment, on loopback (AUTH_MODE none there: the demo page is on)
        env: { ...process.env, ...envOf('runtime'), HOST: '127.0.0.1', PORT: String(port), DATA_DIR: path.join(scratch, 'data'), LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output = collect(child);
      try {
        await until('the replayed image to be ready', async () => ((await healthcheck(port)) === 0 ? true : undefined), 30_000);
        const page = await fetch(`http://127.0.0.1:${port}/`);
        expect(page.status, output()).toBe(200);
        expect(await page.text()).toMatch(/<html/i);
        expect((await fetch(`http://127.0.0.1:${port}/demo/uppy.min.mjs`)).status).toBe(200);
      } finally {
        expect(await stop(child, 'SIGTERM'), `graceful exit on SIGTERM; output: ${output().slice(-2000)}`).toBe(0);
      }

      // not ready: a /readyz that answers 503, and nothing listening
      const busy = createServer((_, res) => res.writeHead(503).end('{"status":"busy"}'));
      const busyPort = await freePort();
      await new Promise<void>((resolve) => busy.listen(busyPort, '127.0.0.1', resolve));
      try {
        expect(await healthcheck(busyPort)).toBe(1);
      } finally {
        busy.close();
      }
      expect(await healthcheck(await freePort())).toBe(1);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('deploy/compose.yaml', () => {
  it('is valid under the Compose Specification schema, before and after interpolation (and a broken copy is not)', async () => {
    const { $schema, ...schema } = JSON.parse(read('node_modules/dclint/schemas/compose.schema.json')) as Record<string, unknown>;
    expect($schema).toMatch(/draft-07/);
    expect(schema.title).toBe('Compose Specification');
    // strict off: the schema uses `deprecated` and such, which draft-07 does not define
    const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true });
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
    const validate = ajv.compile(schema);
    const env = await filledEnv();
    for (const document of [compose, mapStrings(compose, (s) => interpolate(s, env))]) {
      expect(validate(document), ajv.errorsText(validate.errors)).toBe(true);
    }
    const broken = structuredClone(compose) as { services: Record<string, Record<string, unknown>> };
    (broken.services.nginx as Record<string, unknown>).portz = ['8080:8080'];
    (broken.services.redis as Record<string, unknown>).restart = 5;
    expect(validate(broken)).toBe(false);
    expect(ajv.errorsText(validate.errors)).toMatch(/additional properties|must be string/);
  });

  it('has the scale-out shape: two tusgate instances from the Dockerfile behind nginx, Redis with AOF, S3, the webhook receiver', () => {
    expect(Object.keys(services).sort()).toEqual(['minio', 'nginx', 'redis', 's3-init', 'tusgate-1', 'tusgate-2', 'webhook-receiver']);
    expect(TUSGATE_SERVICES).toEqual(['tusgate-1', 'tusgate-2']);
    for (const name of [...TUSGATE_SERVICES, 'webhook-receiver']) {
      const build = services[name]?.build as { context: string; dockerfile: string };
      expect(path.resolve(DEPLOY, build.context)).toBe(ROOT);
      expect(path.resolve(DEPLOY, build.context, build.dockerfile)).toBe(DOCKERFILE);
    }
    // each instance keeps its own DATA_DIR volume
    const volumes = TUSGATE_SERVICES.map((name) => services[name]?.volumes?.find((v) => v.endsWith(`:${envOf('runtime').DATA_DIR}`)));
    expect(new Set(volumes).size).toBe(2);

    const redis = (services.redis?.command as string[]).join(' ');
    expect(redis).toMatch(/--appendonly yes/);
    expect(redis).toMatch(/--appendfsync everysec/);
    expect(redis).toMatch(/--maxmemory-policy noeviction/);
    expect(services.redis?.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);

    // nginx: the repository's template and entrypoint, mounted where the entrypoint looks
    const nginx = services.nginx as { entrypoint: string[]; volumes: string[]; environment: Record<string, string> };
    const mounts = Object.fromEntries(nginx.volumes.map((v) => v.split(':')).map(([host, target]) => [target ?? '', host ?? '']));
    expect(mounts['/etc/tusgate/nginx/tusgate.conf.template']).toBe('./nginx/tusgate.conf.template');
    const script = nginx.entrypoint.at(-1) ?? '';
    expect(mounts[script]).toBe('./container/nginx-entrypoint.sh');
    for (const host of Object.values(mounts)) expect(fs.existsSync(path.resolve(DEPLOY, host ?? '')), host).toBe(true);
    expect((nginx.environment.UPSTREAMS ?? '').split(',').sort()).toEqual(TUSGATE_SERVICES.map((name) => `${name}:${envOf('runtime').PORT}`));

    // what runs from the image is in the image (copied to the same path under WORKDIR)
    const inImage = (file: string) =>
      copies('runtime').some((c) => c.from === undefined && c.sources.some((s) => path.posix.normalize(file) === path.posix.normalize(s) || path.posix.normalize(file).startsWith(path.posix.normalize(s))));
    for (const file of (services['webhook-receiver']?.command as string[]).filter((a) => a.endsWith('.mjs'))) expect(inImage(file), file).toBe(true);
    expect(inImage(services['tusgate-1']?.environment?.PROFILES_FILE ?? '')).toBe(true);
  });

  it('uses only variables that deploy/.env.example has, and .env.example none that it does not use', () => {
    const used = references(compose);
    const { values } = envExample();
    expect([...used.keys()].filter((name) => !(name in values))).toEqual([]);
    expect(Object.keys(values).filter((name) => !used.has(name))).toEqual([]);
  });

  it('needs every secret (compose stops without it), and the recipes in .env.example make secrets tusgate accepts', async () => {
    const used = references(compose);
    const { values, recipes } = envExample();
    for (const [name, ops] of used) {
      if (values[name] !== '') continue;
      // empty in the example: either optional with an empty default, or required and made by a recipe
      if (ops.every((op) => op === ':?')) expect(recipes[name], `${name} has a recipe in .env.example`).toBeDefined();
      else expect(ops.every((op) => op === ':-'), `${name}: \${${name}:-...} or \${${name}:?...}`).toBe(true);
    }
    for (const secret of ['AUTH_JWT_SECRET', 'WEBHOOK_SECRET', 'MINIO_ROOT_PASSWORD', 'TUSGATE_S3_SECRET_KEY']) {
      expect(used.get(secret)?.every((op) => op === ':?'), `${secret} is required`).toBe(true);
    }
    expect(() => mapStrings(compose, (s) => interpolate(s, values))).toThrow(/required variable \w+ is missing a value/);
    const config = loadConfig(await tusgateEnv('tusgate-1'));
    expect(config.AUTH_JWT_SECRET?.length).toBeGreaterThanOrEqual(32);
    expect(config.WEBHOOK_SECRET).toMatch(/^whsec_/);
    expect(config.METRICS_TOKEN?.length).toBeGreaterThanOrEqual(16);
  });

  it("sets tusgate only real configuration variables, which tusgate's config loads as the scale-out setup", async () => {
    for (const name of TUSGATE_SERVICES) {
      const environment = services[name]?.environment ?? {};
      expect(Object.keys(environment).filter((key) => !CONFIG_VARIABLES.has(key) && !SDK_VARIABLES.has(key))).toEqual([]);
      const env = await tusgateEnv(name);
      const config = loadConfig(env);
      expect(config).toMatchObject({ HOST: '0.0.0.0', authMode: 'jwt', TUS_STORE: 's3', PUBLIC_STORE: 's3', TRUST_PROXY: true, S3_FORCE_PATH_STYLE: true });
      expect(config.REDIS_URL).toBeDefined();
      expect(config.WEBHOOK_URL).toBeDefined();
      expect(env.AWS_ACCESS_KEY_ID).not.toBe('');
      expect(env.AWS_SECRET_ACCESS_KEY).not.toBe('');
      expect([...profilesOf(config).keys()]).toContain('avatar');
    }
  });

  it('points the instances at the services compose starts, and creates the buckets they use', async () => {
    const env = await tusgateEnv('tusgate-1');
    const config = loadConfig(env);
    expect(hostPort(config.REDIS_URL ?? '')).toEqual({ host: 'redis', port: '6379' });
    expect(hostPort(config.S3_ENDPOINT ?? '')).toEqual({ host: 'minio', port: '9000' });
    const receiver = services['webhook-receiver']?.environment ?? {};
    expect(hostPort(config.WEBHOOK_URL ?? '')).toEqual({ host: 'webhook-receiver', port: receiver.PORT });
    expect(receiver.WEBHOOK_SECRET).toBe(services['tusgate-1']?.environment?.WEBHOOK_SECRET);
    const init = (services['s3-init']?.command as string[]).join('\n');
    for (const bucket of [config.S3_BUCKET, config.PUBLIC_S3_BUCKET]) expect(init).toMatch(new RegExp(`mc mb [^\\n]*local/${bucket}\\b`));
    expect(init).toMatch(new RegExp(`mc anonymous set download local/${config.PUBLIC_S3_BUCKET}\\b`));
    expect(config.publicBaseUrl.endsWith(`/${config.PUBLIC_S3_BUCKET}`)).toBe(true);
    // the instances' credentials are the key s3-init makes
    expect(services['tusgate-1']?.environment?.AWS_ACCESS_KEY_ID).toBe(services['s3-init']?.environment?.TUSGATE_S3_ACCESS_KEY);
    const depends = services['tusgate-1']?.depends_on as Record<string, { condition: string }>;
    expect(depends).toMatchObject({ redis: { condition: 'service_healthy' }, 's3-init': { condition: 'service_completed_successfully' } });
  });

  it("s3-init's script, run twice by sh with a stand-in for mc, makes the buckets and the key and attaches the policy once", async () => {
    const init = services['s3-init'] as { entrypoint: string[]; command: string[]; environment: Record<string, string> };
    const env = await filledEnv();
    const script = interpolate(init.command.join('\n'), env);
    const dir = tempDir('tusgate-s3-init-');
    try {
      // mc: records its arguments; `admin user info` shows the policy once `admin policy attach` ran
      fs.writeFileSync(
        path.join(dir, 'mc'),
        ['#!/bin/sh', `echo "$*" >>"${dir}/calls"`, `case "$*" in "admin policy attach"*) touch "${dir}/attached" ;; "admin user info"*) [ -e "${dir}/attached" ] && echo "PolicyName: readwrite" ;; esac`, 'exit 0', ''].join('\n'),
        { mode: 0o755 },
      );
      const containerEnv = { PATH: `${dir}:${process.env.PATH ?? ''}`, ...(mapStrings(init.environment, (s) => interpolate(s, env)) as Record<string, string>) };
      const [shell, ...flags] = init.entrypoint;
      for (let i = 0; i < 2; i++) await run(shell ?? 'sh', [...flags, script], { env: containerEnv });
      const calls = fs.readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n');
      expect(calls.filter((c) => c.startsWith('admin policy attach'))).toEqual([`admin policy attach local readwrite --user ${env.TUSGATE_S3_ACCESS_KEY}`]);
      expect(calls).toContain(`alias set local http://minio:9000 ${env.MINIO_ROOT_USER} ${env.MINIO_ROOT_PASSWORD}`);
      expect(calls).toContain(`admin user add local ${env.TUSGATE_S3_ACCESS_KEY} ${env.TUSGATE_S3_SECRET_KEY}`);
      expect(calls).toContain('mb --ignore-existing local/tusgate-staging local/tusgate-media');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives the instances time to shut down gracefully before SIGKILL', () => {
    const defaults = loadConfig({});
    const needed = (defaults.SHUTDOWN_TIMEOUT_MS + defaults.SHUTDOWN_HARD_EXIT_MS) / 1000;
    for (const name of TUSGATE_SERVICES) {
      const grace = /^(\d+)s$/.exec(String(services[name]?.stop_grace_period))?.[1];
      expect(Number(grace), `${name} stop_grace_period`).toBeGreaterThan(needed);
    }
  });
});

describe('deploy/container/nginx-entrypoint.sh', () => {
  const nginxUser = () => (process.getuid?.() === 0 ? 'root' : os.userInfo().username);
  const entrypointEnv = (dir: string, listen: string, upstreams: string) => ({
    ...process.env,
    UPSTREAMS: upstreams,
    NGINX_LISTEN: listen,
    NGINX_DIR: dir,
    NGINX_TEMPLATE: path.join(DEPLOY, 'nginx', 'tusgate.conf.template'),
    NGINX_USER: nginxUser(),
  });

  it("renders the nginx template as deploy/services/nginx.sh does (in the foreground), and nginx proxies to tusgate through it", async () => {
    ensurePackage('nginx', 'nginx');
    const dir = tempDir('tusgate-nginx-container-');
    const server = await startServer();
    const port = await freePort();
    const script = path.join(DEPLOY, 'container', 'nginx-entrypoint.sh');
    // The script links nginx's logs to /dev/stdout and /dev/stderr, as the official image does. Docker
    // gives a container pipes; node's 'pipe' stdio is a socket, which /dev/stdout cannot reopen
    // (ENXIO): a file stands in here.
    const log = path.join(dir, 'output.log');
    const fd = fs.openSync(log, 'w');
    const child = spawn('sh', [script], { env: entrypointEnv(path.join(dir, 'nginx'), `127.0.0.1:${port}`, `127.0.0.1:${server.port}`), stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const output = () => fs.readFileSync(log, 'utf8');
    try {
      await until('nginx', async () => ((await fetch(`http://127.0.0.1:${port}/.nginx-health`)).ok ? true : undefined));
      const conf = fs.readFileSync(path.join(dir, 'nginx', 'nginx.conf'), 'utf8');
      expect(conf).toMatch(/^daemon off;$/m);
      expect(conf).toContain(`server 127.0.0.1:${server.port} max_fails=1 fail_timeout=5s;`);
      expect(conf).not.toMatch(/@@(UPSTREAM_SERVERS|LISTEN|DIR)@@/);
      // everything else is the template's: the proxy settings made for tus
      const template = read('deploy/nginx/tusgate.conf.template');
      const proxyBlock = template.slice(template.indexOf('location / {'));
      expect(conf).toContain(proxyBlock.trim());
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status, output()).toBe(200);
      const options = await fetch(`http://127.0.0.1:${port}/files/`, { method: 'OPTIONS' });
      expect(options.headers.get('tus-version')).toContain('1.0.0');
      // the access log reaches the container's output
      await until('the access log line', async () => (output().includes('"OPTIONS /files/ HTTP/1.1" 204') ? true : undefined), 5_000);
    } finally {
      expect(await stop(child, 'SIGQUIT'), `nginx exits on SIGQUIT (graceful); output: ${output()}`).toBe(0);
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad upstream, a bad listen address and a template without the lines it changes', async () => {
    const dir = tempDir('tusgate-nginx-container-');
    const script = path.join(DEPLOY, 'container', 'nginx-entrypoint.sh');
    const attempt = async (env: NodeJS.ProcessEnv) => {
      try {
        await run('sh', [script, '-t'], { env });
        return '';
      } catch (error) {
        return (error as { stderr: string }).stderr;
      }
    };
    try {
      expect(await attempt(entrypointEnv(dir, '8080', 'tusgate-1:1080,no port'))).toMatch(/bad upstream "no port"/);
      expect(await attempt(entrypointEnv(dir, '80 80', 'tusgate-1:1080'))).toMatch(/bad NGINX_LISTEN/);
      expect(await attempt({ ...entrypointEnv(dir, '8080', ''), UPSTREAMS: '' })).toMatch(/UPSTREAMS is empty/);
      const template = path.join(dir, 'no-daemon.template');
      fs.writeFileSync(template, read('deploy/nginx/tusgate.conf.template').replace('daemon on;', ''));
      expect(await attempt({ ...entrypointEnv(dir, '8080', 'tusgate-1:1080'), NGINX_TEMPLATE: template })).toMatch(/no line 'daemon on;'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the webhook receiver as compose.yaml runs it', () => {
  it('listens beyond 127.0.0.1 with the preload, and verifies and handles a signed event', async () => {
    const command = services['webhook-receiver']?.command as string[];
    expect(command[0]).toBe('node');
    const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
    const port = await freePort();
    // 127.0.0.2 stands for "an address other than the 127.0.0.1 the example names" (LISTEN_HOST; 0.0.0.0 in compose)
    const child = spawn(process.execPath, command.slice(1), {
      cwd: ROOT,
      env: { ...process.env, WEBHOOK_SECRET: secret, PORT: String(port), LISTEN_HOST: '127.0.0.2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = collect(child);
    try {
      await until('the receiver', async () => ((await fetch(`http://127.0.0.2:${port}/`, { method: 'POST', body: '{}' })).status === 400 ? true : undefined));
      await expect(fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' })).rejects.toThrow();
      const body = JSON.stringify({
        type: 'artifact.published',
        timestamp: new Date().toISOString(),
        data: { uploadId: 'u1', owner: 'ada', profile: 'default', artifact: { url: 'http://localhost:9000/tusgate-media/a.webp' } },
      });
      const id = 'msg_test_1';
      const now = new Date();
      const signature = new Webhook(secret).sign(id, now, body);
      const headers = { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature };
      expect((await fetch(`http://127.0.0.2:${port}/`, { method: 'POST', headers, body })).status).toBe(204);
      expect((await fetch(`http://127.0.0.2:${port}/`, { method: 'POST', headers: { ...headers, 'webhook-signature': 'v1,AAAA' }, body })).status).toBe(400);
      await until('the log line', async () => (output().includes('ada published http://localhost:9000/tusgate-media/a.webp') ? true : undefined), 5_000);
    } finally {
      await stop(child);
    }
  });
});

describe('deploy/systemd/tusgate.service', () => {
  const UNIT = path.join(DEPLOY, 'systemd', 'tusgate.service');
  const setting = (key: string) =>
    read(UNIT)
      .split('\n')
      .filter((line) => line.startsWith(`${key}=`))
      .map((line) => line.slice(key.length + 1));

  it("starts what `npm start` starts: node with package.json's flags on the build's entry point", () => {
    const [exec, ...args] = only(setting('ExecStart'), 'one ExecStart').split(/\s+/);
    expect(path.basename(exec ?? '')).toBe('node');
    expect(args).toEqual(startArgs());
    for (const [name, value] of Object.entries(startEnv())) expect(setting('Environment').join(' ').split(/\s+/)).toContain(`${name}=${value}`);
    // relative to WorkingDirectory (the project, built there): the file `npm run build` makes (the suite's setup built it)
    expect(setting('WorkingDirectory')).toHaveLength(1);
    expect(exists(args.at(-1) ?? ''), `${args.at(-1)} after npm run build`).toBe(true);
    expect(setting('KillSignal')).toEqual(['SIGTERM']);
    const defaults = loadConfig({});
    expect(Number(setting('TimeoutStopSec')[0])).toBeGreaterThan((defaults.SHUTDOWN_TIMEOUT_MS + defaults.SHUTDOWN_HARD_EXIT_MS) / 1000);
    const environment = setting('Environment').flatMap((line) => line.split(/\s+/)).map((pair) => pair.split('=')[0] ?? '');
    expect(environment.filter((name) => name !== 'NODE_ENV' && !CONFIG_VARIABLES.has(name) && !(name in startEnv()))).toEqual([]);
  });

  // systemd-analyze comes with Debian's systemd package, which this machine's image has; where
  // it is missing it is installed like the services' packages (deploy/services/lib.sh). It exits
  // 0 on an unknown key or a value it cannot parse (it only prints them), so any output fails the
  // test. What it does not check: the unit's User=tusgate (systemd 252 resolves users only when
  // it starts the service; no such user exists here, none is made) and WorkingDirectory=
  // /opt/tusgate. It does check that ExecStart's /usr/bin/node exists on this machine.
  it('passes systemd-analyze verify without a word (and a broken copy does not)', async () => {
    ensurePackage('systemd-analyze', 'systemd');
    const verify = async (unit: string) => {
      try {
        const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', unit], { timeout: 60_000 });
        return { code: 0, output: `${stdout}${stderr}`.trim() };
      } catch (error) {
        const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
        return { code, output: `${stdout}${stderr}`.trim() };
      }
    };
    expect(await verify(UNIT)).toEqual({ code: 0, output: '' });
    const dir = tempDir('tusgate-systemd-');
    try {
      const broken = path.join(dir, 'tusgate.service');
      fs.writeFileSync(broken, read(UNIT).replace('KillSignal=SIGTERM', 'KillSignall=SIGTERM').replace('TimeoutStopSec=40', 'TimeoutStopSec=forty'));
      const result = await verify(broken);
      expect(result.output).toMatch(/Unknown key 'KillSignall'/);
      expect(result.output).toMatch(/Failed to parse time value.*forty/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

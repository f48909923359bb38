// `dbflow init`: a pipeline for the databases a user names, written, validated and checked against the servers.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { loadPipeline } from '../engine/load.js';
import { dbflowRoot } from '../engine/versions.js';
import { ExitCode, UsageError } from '../errors.js';
import { NAME_PATTERN } from '../schema/pipeline-schema.js';
import { CronPattern } from 'croner';
import { displayUrl, parseDurationFlag } from './command-support.js';
import type { Io } from './io.js';
import { preflight, preflightLines } from './preflight.js';

/** `dbflow init` flags. */
export interface InitOptions {
  postgres?: string[];
  mysql?: string[];
  sqlite?: string[];
  to?: string;
  name?: string;
  schedule?: string;
  rpo?: string;
  passphraseFile?: string;
  output?: string;
  force?: boolean;
  /** False (--no-check): write the pipeline without connecting to anything. */
  check?: boolean;
}

/** The environment variable the scaffolded pipelines read the OpenPGP passphrase from (as `dbflow restore` does). */
export const INIT_PASSPHRASE_ENV = 'DBFLOW_PASSPHRASE';

type Driver = 'postgres' | 'mysql' | 'sqlite';

/** One database of the pipeline to write. */
interface Source {
  key: string;
  driver: Driver;
  /** What goes into the file: the URL without its password, a sqlite path relative to the pipeline. */
  url: string;
  /** A password that was in the URL: read from this environment variable, never written. */
  password?: { env: string; value: string };
}

const EXTENSION: Record<Driver, string> = { postgres: 'dump', mysql: 'sql', sqlite: 'sqlite3' };
/** Whether a driver's databases join the others' one cut; the sqlite driver cannot hold a cut, so each file is copied on its own. */
const IN_CUT: Record<Driver, boolean> = { postgres: true, mysql: true, sqlite: false };
const LABEL: Record<Driver, string> = { postgres: 'PostgreSQL', mysql: 'MariaDB/MySQL', sqlite: 'SQLite' };

/** `dbflow init`: asks on a terminal for what the flags leave out, writes the pipeline (and a passphrase file), then checks it. */
export async function initCommand(o: InitOptions, io: Io): Promise<number> {
  const named = [...(o.postgres ?? []), ...(o.mysql ?? []), ...(o.sqlite ?? [])].length > 0;
  const answers = !named && io.isTTY && process.stdin.isTTY ? await ask(o, io) : o;
  if (![...(answers.postgres ?? []), ...(answers.mysql ?? []), ...(answers.sqlite ?? [])].length)
    throw new UsageError(
      'name the databases to back up: --postgres <url>, --mysql <url>, --sqlite <path> (each may be given several times), or run `dbflow init` at a terminal to be asked.',
    );
  for (const [flag, values] of Object.entries({
    '--postgres': answers.postgres,
    '--mysql': answers.mysql,
    '--sqlite': answers.sqlite,
    '--to': [answers.to],
    '--schedule': [answers.schedule],
  }))
    for (const v of values ?? [])
      if (v?.includes('{{'))
        throw new UsageError(
          `${flag} "${displayUrl(v)}" contains "{{", which a pipeline reads as a template; init writes values as they are given (edit the file to use templates).`,
        );
  const output = path.resolve(answers.output ?? `${answers.name ?? defaultName(answers)}.yaml`);
  const name = answers.name ?? path.basename(output).replace(/\.ya?ml$/, '');
  if (!new RegExp(NAME_PATTERN).test(name))
    throw new UsageError(`--name "${name}" is not a pipeline name: letters, digits, ".", "_" and "-", starting with a letter or digit.`);
  const schedule = answers.schedule ?? '0 2 * * *';
  try {
    new CronPattern(schedule);
  } catch (err) {
    throw new UsageError(
      `--schedule "${schedule}" is not a cron expression (${(err as Error).message}); e.g. "0 2 * * *" for 02:00 every day.`,
    );
  }
  const rpo = answers.rpo ?? '26h';
  parseDurationFlag(rpo, '--rpo');
  const sources = collectSources(answers, path.dirname(output));
  const repo = answers.to ?? `file://./backups/${name}`;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(repo))
    throw new UsageError(
      `--to "${repo}" is not a repository URL: file:///backups/x, file://./backups/x (beside the pipeline), s3://bucket/prefix or sftp://user@host/path.`,
    );
  if (existsSync(output) && !answers.force)
    throw new UsageError(
      `"${path.relative(process.cwd(), output) || output}" exists; choose another --output or pass --force to replace it.`,
    );

  const passphraseFile = answers.passphraseFile !== undefined ? path.resolve(answers.passphraseFile) : undefined;
  mkdirSync(path.dirname(output), { recursive: true });
  const yaml = scaffold({
    name,
    sources,
    repo,
    schedule,
    rpo,
    passphraseFile: passphraseFile && relativeTo(path.dirname(output), passphraseFile),
  });
  writeFileSync(output, yaml);
  const shown = path.relative(process.cwd(), output) || output;
  io.out(
    `wrote ${shown}: pipeline "${name}", ${sources.map((s) => `${s.key} (${LABEL[s.driver]})`).join(', ')} → ${displayUrl(repo)}, "${schedule}" UTC, rpo ${rpo}`,
  );
  if (passphraseFile) io.out(createPassphrase(passphraseFile));

  const env: Record<string, string | undefined> = { ...process.env };
  for (const s of sources) if (s.password) env[s.password.env] = s.password.value;
  const setLater = sources.flatMap((s) =>
    s.password && process.env[s.password.env] === undefined
      ? [`${s.password.env}  (${s.key}'s password, which was in the URL; it is not written into the file)`]
      : [],
  );
  if (!passphraseFile && !process.env[INIT_PASSPHRASE_ENV]) {
    setLater.push(
      `${INIT_PASSPHRASE_ENV}  (the OpenPGP passphrase the backups are encrypted with; keep a copy where you keep the backups' keys)`,
    );
    env[INIT_PASSPHRASE_ENV] = 'a passphrase for the check only';
  }
  let code: number = ExitCode.ok;
  if (answers.check !== false) {
    const loaded = await loadPipeline(output, { env });
    io.out(
      `checking ${sources.length === 1 ? 'the database' : `the ${sources.length} databases`} and the repository (nothing is changed)…`,
    );
    const result = await preflight(loaded, { env, signal: AbortSignal.timeout(120_000) });
    (result.ok ? io.out : io.err)(preflightLines(result).join('\n'));
    if (!result.ok) {
      io.err(
        `${shown} is written; a run will fail until the problems above are fixed (check again with \`dbflow run ${shown} --dry-run\`).`,
      );
      code = ExitCode.stepFailed;
    }
  }
  io.out('next:');
  for (const v of setLater) io.out(`  export ${v}`);
  io.out(`  dbflow run ${shown}          # a backup now, verified by a restore`);
  io.out(`  dbflow daemon ${path.relative(process.cwd(), path.dirname(output)) || '.'}   # or: on its schedule (docs/scheduling.md)`);
  return code;
}

// Databases from the flags, each with a key (from its database or file name) unique in the pipeline.
function collectSources(o: InitOptions, dir: string): Source[] {
  const out: Source[] = [];
  const keys = new Set<string>();
  const unique = (base: string): string => {
    let key = (base.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=[^A-Za-z_])/, 'db_') || 'db').toLowerCase();
    for (let n = 2; keys.has(key); n++) key = `${key.replace(/_\d+$/, '')}_${n}`;
    keys.add(key);
    return key;
  };
  for (const [driver, list] of [
    ['postgres', o.postgres],
    ['mysql', o.mysql],
  ] as const) {
    for (const raw of list ?? []) {
      const flag = `--${driver}`;
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new UsageError(
          `${flag} "${displayUrl(raw)}" is not a URL; e.g. ${driver === 'postgres' ? 'postgres://backup@db.internal:5432/app' : 'mysql://backup@db.internal:3306/app'}.`,
        );
      }
      const schemes = driver === 'postgres' ? ['postgres:', 'postgresql:'] : ['mysql:', 'mariadb:'];
      if (!schemes.includes(url.protocol))
        throw new UsageError(`${flag} "${displayUrl(raw)}" must start with ${schemes.map((s) => `${s}//`).join(' or ')}.`);
      const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
      if (!database)
        throw new UsageError(`${flag} "${displayUrl(raw)}" names no database; add it to the path, e.g. ${url.protocol}//${url.host}/app.`);
      const key = unique(database);
      const password = url.password ? { env: `${key.toUpperCase()}_DB_PASSWORD`, value: decodeURIComponent(url.password) } : undefined;
      url.password = '';
      out.push({ key, driver, url: url.href, ...(password && { password }) });
    }
  }
  for (const file of o.sqlite ?? []) {
    const at = file.replace(/^sqlite:/, '');
    out.push({
      key: unique(path.basename(at).replace(/\.[^.]*$/, '')),
      driver: 'sqlite',
      url: `sqlite:${relativeTo(dir, path.resolve(at))}`,
    });
  }
  return out;
}

// A path as the pipeline names it: relative to its folder when inside it, else absolute.
function relativeTo(dir: string, file: string): string {
  const rel = path.relative(dir, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : `./${rel}`;
}

function defaultName(o: InitOptions): string {
  const bases = [...(o.postgres ?? []), ...(o.mysql ?? [])].map((u) => /\/([^/?#]+)(?:[?#].*)?$/.exec(u)?.[1] ?? 'db');
  bases.push(...(o.sqlite ?? []).map((f) => path.basename(f).replace(/\.[^.]*$/, '')));
  const joined = bases
    .slice(0, 3)
    .join('-')
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return `${joined || 'db'}-nightly`;
}

// Writes a new random passphrase, readable by its owner only; an existing file is kept as it is.
function createPassphrase(file: string): string {
  const shown = path.relative(process.cwd(), file) || file;
  let fd: number;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return `using the passphrase in ${shown} (it exists; not changed)`;
    throw new UsageError(
      `cannot create the passphrase file "${shown}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`,
    );
  }
  try {
    writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
  } finally {
    closeSync(fd);
  }
  return `created ${shown} (mode 0600) with a new random passphrase: keep a copy apart from the backups; without it they cannot be decrypted`;
}

/** What a scaffolded pipeline holds. */
interface Scaffold {
  name: string;
  sources: Source[];
  repo: string;
  schedule: string;
  rpo: string;
  passphraseFile?: string | undefined;
}

const q = (s: string): string => JSON.stringify(s);

// The pipeline's text: one snapshot of every server database (one cut when there are several) and, beside it, one of
// every SQLite file, then one chain per driver (the artifact's file name ends with its driver's format), each
// restore-tested and count-checked.
function scaffold(s: Scaffold): string {
  const drivers = [...new Set(s.sources.map((x) => x.driver))];
  const inCut = s.sources.filter((x) => IN_CUT[x.driver]);
  const snapshotOf = (driver: Driver): string => (IN_CUT[driver] || !inCut.length ? 'snapshot' : `snapshot_${driver}`);
  const snapshots = new Map<string, Source[]>();
  for (const x of s.sources) snapshots.set(snapshotOf(x.driver), [...(snapshots.get(snapshotOf(x.driver)) ?? []), x]);
  const env = s.sources
    .filter((x) => x.password)
    .map((x) => `#   ${x.password!.env.padEnd(24)} ${x.key}'s password (dbflow hands it to the tools in a 0600 file, never in argv)`);
  if (!s.passphraseFile) env.push(`#   ${INIT_PASSPHRASE_ENV.padEnd(24)} the OpenPGP passphrase (dbflow restore and verify read it too)`);
  if (/^s3:/i.test(s.repo))
    env.push(`#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (or a profile or role); AWS_ENDPOINT_URL for another S3 service`);
  if (/^sftp:/i.test(s.repo))
    env.push(
      `#   DBFLOW_SFTP_KEY            the SSH private key (else ssh-agent, else ~/.ssh/id_*); the server's host key must be in ~/.ssh/known_hosts (or the file DBFLOW_SFTP_KNOWN_HOSTS names)`,
    );
  const lines = [
    `# Written by \`dbflow init\`: ${inCut.length === s.sources.length && s.sources.length > 1 ? 'one consistent backup' : 'a backup'} of ${s.sources.map((x) => x.key).join(', ')}, verified by a restore.`,
    `# Check it with \`dbflow run ${s.name}.yaml --dry-run\`, run it with \`dbflow run\`, schedule it with \`dbflow daemon\`.`,
    ...(env.length ? ['#', '# Set before running:', ...env] : []),
    'version: 1',
    `name: ${s.name}`,
    `schedule: ${q(s.schedule)}`,
    'timezone: UTC',
    'overlap: skip',
    `rpo: ${s.rpo}                       # \`dbflow status\` fails when the newest verified backup is older`,
    'secrets:',
    s.passphraseFile
      ? `  passphrase: { file: ${q(s.passphraseFile)} }   # mode 0600; keep a copy apart from the backups`
      : `  passphrase: { env: ${INIT_PASSPHRASE_ENV} }`,
    ...s.sources.filter((x) => x.password).map((x) => `  ${x.key}_password: { env: ${x.password!.env} }`),
    'vars:',
    `  repo: ${q(s.repo)}`,
    'databases:',
    ...s.sources.map(
      (x) => `  ${x.key}: { driver: ${x.driver}, url: ${q(x.url)}${x.password ? `, password: "{{ secrets.${x.key}_password }}"` : ''} }`,
    ),
    'steps:',
  ];
  for (const [id, members] of snapshots) {
    const cut = members.length > 1 && members.every((x) => IN_CUT[x.driver]);
    const comment = cut
      ? 'one cut: commits wait a few milliseconds while every snapshot is taken'
      : members.length > 1
        ? 'a consistent snapshot of each file, one after the other (SQLite cannot join a cut)'
        : 'a consistent snapshot; row counts and checksums are taken inside it';
    lines.push(
      `  - id: ${id}${' '.repeat(Math.max(1, 24 - id.length))}# ${comment}`,
      '    uses: snapshot',
      `    with: { databases: [${members.map((x) => x.key).join(', ')}]${members.length > 1 && !cut ? ', coordinated: false' : ''} }`,
    );
  }
  for (const driver of drivers) {
    const keys = s.sources.filter((x) => x.driver === driver).map((x) => x.key);
    const id = (step: string): string => (drivers.length > 1 ? `${step}_${driver}` : step);
    const matrix = `    matrix: { db: [${keys.join(', ')}] }`;
    const step = (name: string, uses: string, extra: string[], comment = ''): string[] => [
      `  - id: ${id(name)}${comment && `${' '.repeat(Math.max(1, 24 - id(name).length))}# ${comment}`}`,
      matrix,
      `    uses: ${uses}`,
      ...extra,
    ];
    lines.push(
      ...step('dump', 'dump', [`    with: { database: "{{ matrix.db }}", snapshot: ${snapshotOf(driver)} }`]),
      ...step('compress', 'compress', [`    input: ${id('dump')}`, '    with: { algorithm: zstd, level: 3 }']),
      ...step('encrypt', 'encrypt', [`    input: ${id('compress')}`, '    with: { passphrase: "{{ secrets.passphrase }}" }']),
      ...step('upload', 'upload', [
        `    input: ${id('encrypt')}`,
        `    with: { to: "{{ vars.repo }}/{{ run.id }}/{{ matrix.db }}.${EXTENSION[driver]}.zst.pgp" }`,
      ]),
      ...step(
        'restore_test',
        'restore-test',
        [`    with: { from: ${id('upload')}, passphrase: "{{ secrets.passphrase }}" }`],
        'restores what was stored into a scratch database',
      ),
      ...step(
        'rowcount_check',
        'rowcount-check',
        [`    with: { restored: ${id('restore_test')}, snapshot: ${snapshotOf(driver)} }`],
        "counts and checksums must equal the snapshot's",
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

// The questions `dbflow init` asks at a terminal when no database was named; empty answers take the default.
async function ask(o: InitOptions, io: Io): Promise<InitOptions> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const question = async (text: string, fallback?: string): Promise<string | undefined> =>
      (await rl.question(`${text}${fallback ? ` [${fallback}]` : ''}: `)).trim() || fallback;
    io.err('dbflow init: a pipeline that backs up your databases and proves each backup by restoring it.');
    const answers: InitOptions = { ...o, postgres: [], mysql: [], sqlite: [] };
    for (;;) {
      const url = await question(
        `database ${answers.postgres!.length + answers.mysql!.length + answers.sqlite!.length + 1} (postgres://…, mysql://…, sqlite:path; empty when done)`,
      );
      if (!url) break;
      if (/^postgres(ql)?:/i.test(url)) answers.postgres!.push(url);
      else if (/^(mysql|mariadb):/i.test(url)) answers.mysql!.push(url);
      else if (/^sqlite:/i.test(url) || /\.(sqlite3?|db)$/i.test(url)) answers.sqlite!.push(url.replace(/^sqlite:/i, ''));
      else io.err('  not a database URL: postgres://user@host:5432/db, mysql://user@host:3306/db or sqlite:path/to/file.sqlite3');
    }
    if (!answers.postgres!.length && !answers.mysql!.length && !answers.sqlite!.length) return answers;
    answers.name ??= await question('pipeline name', defaultName(answers));
    answers.to ??= await question('repository (file://…, s3://bucket/prefix, sftp://user@host/path)', `file://./backups/${answers.name}`);
    answers.schedule ??= await question('schedule (cron, UTC)', '0 2 * * *');
    answers.rpo ??= await question('recovery point objective (the oldest a verified backup may be)', '26h');
    if (answers.passphraseFile === undefined) {
      const file = await question(
        `passphrase file to create, mode 0600 ("-": read $${INIT_PASSPHRASE_ENV} instead)`,
        `${answers.name}.passphrase`,
      );
      if (file && file !== '-') answers.passphraseFile = file;
    }
    answers.output ??= await question('pipeline file', `${answers.name}.yaml`);
    return answers;
  } finally {
    rl.close();
  }
}

/**
 * `dbflow quickstart [dir]`: puts the quickstart pipeline and its demo passphrase into `dir` (kept as they are when
 * there) and returns the pipeline's path, so that an installed dbflow runs it from any folder.
 */
export function quickstartFiles(dir: string, io: Io): string {
  const from = new URL('pipelines/', dbflowRoot());
  mkdirSync(dir, { recursive: true });
  for (const [name, mode] of [
    ['quickstart.yaml', 0o644],
    ['quickstart.passphrase', 0o600],
  ] as const) {
    const target = path.join(dir, name);
    if (existsSync(target)) continue;
    writeFileSync(target, readFileSync(new URL(name, from)), { mode, flag: 'wx' });
    io.err(`dbflow: wrote ${path.relative(process.cwd(), target) || target}`);
  }
  return path.join(dir, 'quickstart.yaml');
}

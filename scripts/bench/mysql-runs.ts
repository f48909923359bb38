// One timed run of each side of the MariaDB comparison: the shell pipeline, the stock-tools restore,
// and the dbflow pipelines (run through the built CLI by chain-runs.ts).
import { GPG_ENCRYPT } from './chain-runs.js';
import type { Watcher } from './cpu-watch.js';
import { MY_TABLES } from './mysql-generate.js';
import { myRegisterScratch } from './mysql-server.js';
import { BenchError, fileSize, runOk, type Timed } from './util.js';

/**
 * The shell side of the backup: `$DB` is the database, `$MYCNF` the client option file (user, host,
 * port, password), `$OUT` the artifact, `$PASS` the passphrase file. The dump options that change
 * what is dumped are dbflow's (routines, events, hex blobs, utf8mb4), so both sides dump the same text.
 */
export const MY_SHELL_SCRIPT = [
  'set -o pipefail',
  `mariadb-dump --defaults-extra-file="$MYCNF" --single-transaction --routines --events --hex-blob --default-character-set=utf8mb4 --no-tablespaces "$DB" | zstd -3 -T0 -q -c | ${GPG_ENCRYPT}`,
].join('\n');

// Plain names (no quotes): the query goes inside a double-quoted shell word.
const COUNTS_SQL = MY_TABLES.map((t) => `SELECT '${t}', count(*) FROM ${t}`).join(' UNION ALL ');

/**
 * The shell's restore test: a fresh database, the artifact decrypted and decompressed into the
 * `mariadb` client (as dbflow's restore feeds it), `count(*)` of every table, the database dropped;
 * phase times go to stderr.
 */
export const MY_SHELL_RESTORE = [
  'set -o pipefail',
  't0=$(date +%s%N)',
  'mariadb --defaults-extra-file="$MYCNF" -e "CREATE DATABASE \\`$SCRATCH\\` CHARACTER SET utf8mb4" || exit 1',
  't1=$(date +%s%N)',
  'gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$PASS" -d "$OUT" | zstd -d -q -c | mariadb --defaults-extra-file="$MYCNF" --default-character-set=utf8mb4 --binary-mode --batch "$SCRATCH" || exit 1',
  't2=$(date +%s%N)',
  `mariadb --defaults-extra-file="$MYCNF" -N -B "$SCRATCH" -e "${COUNTS_SQL}" || exit 1`,
  't3=$(date +%s%N)',
  'mariadb --defaults-extra-file="$MYCNF" -e "DROP DATABASE \\`$SCRATCH\\`" || exit 1',
  't4=$(date +%s%N)',
  'echo "bench-phases $t0 $t1 $t2 $t3 $t4" >&2',
].join('\n');

export interface MyShellRun extends Timed {
  outBytes: number;
}

export async function myShellRun(
  env: { DB: string; MYCNF: string; OUT: string; PASS: string; GNUPGHOME: string },
  watch?: () => Watcher,
): Promise<MyShellRun> {
  const r = await runOk('bash', ['-c', MY_SHELL_SCRIPT], { env: { ...process.env, ...env }, time: true, ...(watch && { watch }) });
  const outBytes = fileSize(env.OUT);
  if (outBytes === 0) throw new BenchError('the shell pipeline wrote no output');
  return { ...r, outBytes };
}

export interface MyShellRestore extends Timed {
  createMs: number;
  restoreMs: number;
  countMs: number;
  dropMs: number;
  rows: Record<string, number>;
}

/** Restores `OUT` into a new scratch database `SCRATCH` (registered for the drop at exit). */
export async function myShellRestore(env: {
  OUT: string;
  PASS: string;
  GNUPGHOME: string;
  MYCNF: string;
  SCRATCH: string;
}): Promise<MyShellRestore> {
  myRegisterScratch(env.SCRATCH);
  const r = await runOk('bash', ['-c', MY_SHELL_RESTORE], { env: { ...process.env, ...env }, time: true });
  const m = /bench-phases ([\d ]+)/.exec(r.stderr);
  const ts = m?.[1]!
    .trim()
    .split(' ')
    .map((x) => Number(BigInt(x) / 1000n) / 1000);
  if (!ts || ts.length !== 5) throw new BenchError(`the shell restore printed no phase times: ${r.stderr.slice(-1000)}`);
  const [createMs, restoreMs, countMs, dropMs] = ts.slice(1).map((t, i) => t - ts[i]!) as [number, number, number, number];
  const rows = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'))
      .map(([t, n]) => [t, Number(n)]),
  ) as Record<string, number>;
  return { ...r, createMs, restoreMs, countMs, dropMs, rows };
}

/**
 * The bench pipeline for the mysql driver: the steps of the PostgreSQL section; `checksums`
 * undefined leaves the driver's default (on). The upload URL is absolute (a relative one
 * would mean the pipeline file's folder).
 */
export function myBenchYaml(o: {
  name: string;
  url: string;
  passFile: string;
  outDir: string;
  checksums?: boolean;
  restore?: boolean;
}): string {
  const options = o.checksums === undefined ? '' : `, options: { checksums: ${o.checksums} }`;
  const lines = [
    'version: 1',
    `name: ${o.name}`,
    'secrets:',
    `  passphrase: { file: ${JSON.stringify(o.passFile)} }`,
    'databases:',
    `  bench: { driver: mysql, url: ${JSON.stringify(o.url)}${options} }`,
    'steps:',
    '  - { id: snapshot, uses: snapshot, with: { databases: [bench] } }',
    '  - { id: dump, uses: dump, with: { database: bench, snapshot: snapshot } }',
    '  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3, threads: 0 } }',
    '  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }',
    `  - { id: upload, uses: upload, input: encrypt, with: { to: ${JSON.stringify(`file://${o.outDir}/{{ run.id }}/bench.sql.zst.pgp`)} } }`,
  ];
  if (o.restore) {
    lines.push(
      '  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }',
      '  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }',
    );
  }
  return `${lines.join('\n')}\n`;
}

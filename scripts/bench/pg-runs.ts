// One timed run of each side of the PostgreSQL comparison: the shell pipeline, the stock-tools
// restore, and the dbflow pipelines (written here, run through the built CLI by chain-runs.ts).
import { GPG_ENCRYPT } from './chain-runs.js';
import type { Watcher } from './cpu-watch.js';
import { PG_TABLES } from './pg-generate.js';
import { registerScratch } from './pg-server.js';
import { BenchError, fileSize, runOk, type Timed } from './util.js';

/** The shell side of the backup: `$PGURL` is the database, `$OUT` the artifact, `$PASS` the passphrase file. */
export const PG_SHELL_SCRIPT = ['set -o pipefail', `pg_dump -Fc -Z0 -d "$PGURL" | zstd -3 -T0 -q -c | ${GPG_ENCRYPT}`].join('\n');

// Plain names (no quotes): the query goes inside a double-quoted shell word.
const COUNTS_SQL = PG_TABLES.map((t) => `SELECT '${t}', count(*) FROM ${t}`).join(' UNION ALL ');

/**
 * The shell's restore test: a fresh database, the artifact decrypted and decompressed into
 * pg_restore, `count(*)` of every table, the database dropped (as dbflow's restore-test does);
 * phase times go to stderr.
 */
export const PG_SHELL_RESTORE = [
  'set -o pipefail',
  't0=$(date +%s%N)',
  'psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" -c "CREATE DATABASE \\"$SCRATCH\\" TEMPLATE template0" || exit 1',
  't1=$(date +%s%N)',
  'gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$PASS" -d "$OUT" | zstd -d -q -c | pg_restore --exit-on-error -d "$SCRATCH_URL" || exit 1',
  't2=$(date +%s%N)',
  `psql -X -At -F ' ' -v ON_ERROR_STOP=1 -d "$SCRATCH_URL" -c "${COUNTS_SQL}" || exit 1`,
  't3=$(date +%s%N)',
  'psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" -c "DROP DATABASE \\"$SCRATCH\\"" || exit 1',
  't4=$(date +%s%N)',
  'echo "bench-phases $t0 $t1 $t2 $t3 $t4" >&2',
].join('\n');

const phases = (stderr: string, n: number): number[] => {
  const m = /bench-phases ([\d ]+)/.exec(stderr);
  const ts = m?.[1]!
    .trim()
    .split(' ')
    .map((x) => Number(BigInt(x) / 1000n) / 1000);
  if (!ts || ts.length !== n) throw new BenchError(`the shell script printed no phase times: ${stderr.slice(-1000)}`);
  return ts.slice(1).map((t, i) => t - ts[i]!);
};

export interface PgShellRun extends Timed {
  outBytes: number;
}

export async function pgShellRun(
  env: { PGURL: string; OUT: string; PASS: string; GNUPGHOME: string },
  watch?: () => Watcher,
): Promise<PgShellRun> {
  const r = await runOk('bash', ['-c', PG_SHELL_SCRIPT], { env: { ...process.env, ...env }, time: true, ...(watch && { watch }) });
  const outBytes = fileSize(env.OUT);
  if (outBytes === 0) throw new BenchError('the shell pipeline wrote no output');
  return { ...r, outBytes };
}

export interface PgShellRestore extends Timed {
  createMs: number;
  restoreMs: number;
  countMs: number;
  dropMs: number;
  rows: Record<string, number>;
}

/** Restores `OUT` into a new scratch database `SCRATCH` (registered for the drop at exit). */
export async function pgShellRestore(env: {
  OUT: string;
  PASS: string;
  GNUPGHOME: string;
  ADMIN_URL: string;
  SCRATCH: string;
  SCRATCH_URL: string;
}): Promise<PgShellRestore> {
  registerScratch(env.SCRATCH);
  const r = await runOk('bash', ['-c', PG_SHELL_RESTORE], { env: { ...process.env, ...env }, time: true });
  const [createMs, restoreMs, countMs, dropMs] = phases(r.stderr, 5) as [number, number, number, number];
  const rows = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([t, n]) => [t, Number(n)]),
  ) as Record<string, number>;
  return { ...r, createMs, restoreMs, countMs, dropMs, rows };
}

/** The bench pipeline for the postgres driver; the upload URL is absolute (a relative one would mean the pipeline file's folder). */
export function pgBenchYaml(o: {
  name: string;
  url: string;
  passFile: string;
  outDir: string;
  checksums: boolean;
  restore: boolean;
}): string {
  const lines = [
    'version: 1',
    `name: ${o.name}`,
    'secrets:',
    `  passphrase: { file: ${JSON.stringify(o.passFile)} }`,
    'databases:',
    `  bench: { driver: postgres, url: ${JSON.stringify(o.url)}, options: { checksums: ${o.checksums} } }`,
    'steps:',
    '  - { id: snapshot, uses: snapshot, with: { databases: [bench] } }',
    '  - { id: dump, uses: dump, with: { database: bench, snapshot: snapshot } }',
    '  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3, threads: 0 } }',
    '  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }',
    `  - { id: upload, uses: upload, input: encrypt, with: { to: ${JSON.stringify(`file://${o.outDir}/{{ run.id }}/bench.dump.zst.pgp`)} } }`,
  ];
  if (o.restore) {
    lines.push(
      '  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }',
      '  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }',
    );
  }
  return `${lines.join('\n')}\n`;
}

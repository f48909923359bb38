// One timed run of the shell side of the MariaDB comparison, and the dbflow pipelines of the section
// (run through the built CLI by chain-runs.ts).
import path from 'node:path';
import { GPG_ENCRYPT } from './chain-runs.js';
import { BenchError, fileSize, ROOT, runOk, type Timed } from './util.js';

/**
 * The shell side of the backup: `$DB` is the database, `$MYCNF` the client option file (user, host,
 * port, password), `$OUT` the artifact, `$PASS` the passphrase file.
 */
export const MY_SHELL_SCRIPT = [
  'set -o pipefail',
  `mariadb-dump --defaults-extra-file="$MYCNF" --single-transaction "$DB" | zstd -3 -T0 -q -c | ${GPG_ENCRYPT}`,
].join('\n');

export interface MyShellRun extends Timed {
  outBytes: number;
}

export async function myShellRun(env: { DB: string; MYCNF: string; OUT: string; PASS: string; GNUPGHOME: string }): Promise<MyShellRun> {
  const r = await runOk('bash', ['-c', MY_SHELL_SCRIPT], { env: { ...process.env, ...env }, time: true });
  const outBytes = fileSize(env.OUT);
  if (outBytes === 0) throw new BenchError('the shell pipeline wrote no output');
  return { ...r, outBytes };
}

/**
 * The bench pipeline for the mysql driver: the steps of the PostgreSQL section; `checksums`
 * undefined leaves the driver's default (on). The upload URL is relative (the CLI runs in the
 * repository root).
 */
export function myBenchYaml(o: { name: string; url: string; passFile: string; outDir: string; checksums?: boolean }): string {
  const options = o.checksums === undefined ? '' : `, options: { checksums: ${o.checksums} }`;
  return `${[
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
    `  - { id: upload, uses: upload, input: encrypt, with: { to: ${JSON.stringify(`file://./${path.relative(ROOT, o.outDir)}/{{ run.id }}/bench.sql.zst.pgp`)} } }`,
  ].join('\n')}\n`;
}

// 10. MariaDB physical base backups and point-in-time restore: a base backup of a ~1 GB InnoDB database through
// dbflow (mariadb-backup → zstd → openpgp → file) against `mariadb-backup --stream=xbstream | zstd -3 -T0 | gpg` on
// the same server in the same run, and the restore time (RTO) of `restore --to-datadir --latest` from the newest
// base with ~1 GB of archived binlog to replay.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { binlogSetup } from '../../test/helpers/binlog-archive.js';
import { withConnection, withDatabase } from '../../test/helpers/mysql.js';
import { archiveVerbose, benchContext, until } from './archive-run.js';
import { GPG_ENCRYPT } from './chain-runs.js';
import { figure, type Figure } from './report.js';
import { BenchError, CLI, median, MiB, round, runOk } from './util.js';

const SECTION = '10 MariaDB base backup + PITR';

// The shell side: $PORT the server, $TMP mariadb-backup's folders, $OUT the artifact, $PASS the passphrase file.
export const MARIABACKUP_SHELL = [
  'set -o pipefail',
  `mariadb-backup --no-defaults --host=127.0.0.1 --port="$PORT" --user=root --backup --stream=xbstream --target-dir="$TMP" --tmpdir="$TMP" 2>/dev/null | zstd -3 -T0 -q -c | ${GPG_ENCRYPT}`,
].join('\n');

// dbflow's side: the same chain as steps, no restore-test (the shell has none).
const STEPS = `steps:
  - { id: base, uses: mariabackup, with: { database: main } }
  - { id: compress, uses: compress, input: base, with: { algorithm: zstd, level: 3, threads: 0 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "{{ vars.repo }}/{{ run.id }}/main.xbstream.zst.pgp" } }
`;

// Rows of ~1 KiB in `table` (id from `from`), 50,000 per statement, until `mib` MiB were written.
async function fill(url: string, table: string, from: number, mib: number): Promise<number> {
  const rows = Math.round((mib * MiB) / 1024);
  await withConnection(url, async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS ${table} (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB`);
    for (let i = 0; i < rows; i += 50_000)
      await c.query(
        `INSERT INTO ${table} SELECT seq, REPEAT(MD5(seq), 30) FROM seq_${from + i}_to_${from + Math.min(i + 50_000, rows) - 1}`,
      );
  });
  return rows;
}

export async function mariabackupSection(o: {
  sizeMiB: number;
  rounds: number;
  passFile: string;
  gnupgHome: string;
  log: (s: string) => void;
}): Promise<{ figures: Figure[]; details: unknown }> {
  const { t, cleanup } = benchContext();
  try {
    const s = await binlogSetup(
      t,
      ['--binlog-format=ROW', '--max-binlog-size=256M', '--innodb-buffer-pool-size=256M', '--innodb-log-file-size=256M'],
      'root',
      'mariabackup',
    );
    if (!s) throw new BenchError('no throwaway MariaDB');
    writeFileSync(
      s.pipeline,
      readFileSync(s.pipeline, 'utf8')
        .replace('flush: 1s', 'flush: 5s')
        .replace(/steps:\n[\s\S]*$/, STEPS),
    );
    const app = withDatabase(s.my.url, 'app');
    const mib = o.sizeMiB;
    o.log(`  generating a ${mib} MiB InnoDB database`);
    await fill(app, 'big', 1, mib);
    // What mariadb-backup copies of it: its tablespace file.
    const dbMiB = statSync(path.join(s.my.data, 'app', 'big.ibd')).size / MiB;
    // The same pipeline without checksums: the counts alone, as the shell has neither.
    const noChecksums = path.join(s.dir, 'no-checksums.yaml');
    writeFileSync(
      noChecksums,
      readFileSync(s.pipeline, 'utf8').replace(/(main: \{ driver: mysql, url: "[^"]*")/, '$1, options: { checksums: false }'),
    );

    // The archive runs from before the first base on: the newest base's binlog is all stored.
    const stored: string[] = [];
    const archiver = archiveVerbose(s, (line) => {
      const m = /stored (\S+) \(/.exec(line);
      if (m) stored.push(m[1]!);
    });
    const env = { ...process.env, ...s.env, GNUPGHOME: o.gnupgHome };
    const dbflowMs: number[] = [];
    const plainMs: number[] = [];
    const shellMs: number[] = [];
    let dbflowBytes = 0;
    let shellBytes = 0;
    for (let r = 0; r < o.rounds; r++) {
      const d = await runOk(process.execPath, [CLI, 'run', s.pipeline], { cwd: s.dir, env });
      dbflowMs.push(d.wallMs);
      const runs = readdirSync(path.join(s.dir, 'repo')).filter((f) => /^\d{8}T/.test(f));
      dbflowBytes = statSync(path.join(s.dir, 'repo', runs.sort().at(-1)!, 'main.xbstream.zst.pgp')).size;
      plainMs.push((await runOk(process.execPath, [CLI, 'run', noChecksums], { cwd: s.dir, env })).wallMs);
      const tmp = path.join(s.dir, `shell-tmp-${r}`);
      const out = path.join(s.dir, `shell-${r}.xbstream.zst.gpg`);
      const sh = await runOk('bash', ['-c', `mkdir -p "$TMP" && ${MARIABACKUP_SHELL}`], {
        cwd: s.dir,
        env: { ...env, PORT: String(s.my.port), TMP: tmp, OUT: out, PASS: o.passFile },
      });
      shellMs.push(sh.wallMs);
      shellBytes = statSync(out).size;
      rmSync(tmp, { recursive: true, force: true });
      rmSync(out, { force: true });
      o.log(
        `  round ${r + 1}: dbflow ${round(d.wallMs / 1000, 1)} s, without checksums ${round(plainMs.at(-1)! / 1000, 1)} s, shell ${round(sh.wallMs / 1000, 1)} s`,
      );
    }

    // ~1 GB of binlog after the newest base, archived; then the restore to its end is timed.
    const [at] = await withConnection(s.my.url, (c) => c.query<RowDataPacket[]>('SHOW MASTER STATUS'));
    const from = { file: String(at[0]!.File), position: Number(at[0]!.Position) };
    o.log(`  writing ${mib} MiB of rows after the newest base (binlog from ${from.file}:${from.position})`);
    await fill(app, 'later', 1, mib);
    await withConnection(s.my.url, (c) => c.query('FLUSH BINARY LOGS'));
    const [logs] = await withConnection(s.my.url, (c) => c.query<RowDataPacket[]>('SHOW BINARY LOGS'));
    const replayed = logs
      .map((l) => ({ name: String(l.Log_name), bytes: Number(l.File_size) }))
      .filter((l) => l.name >= from.file)
      .slice(0, -1);
    const binlogMiB = (replayed.reduce((n, l) => n + l.bytes, 0) - from.position) / MiB;
    await until(() => stored.includes(replayed.at(-1)!.name), 20 * 60_000, `the archive storing ${replayed.at(-1)!.name}`);
    await archiver.stop();
    o.log(`  restoring the newest base and ${round(binlogMiB, 0)} MiB of binlog into a data directory`);
    const restore = await runOk(
      process.execPath,
      [CLI, 'restore', 'file://./repo', '--to-datadir', path.join(s.dir, 'recovered'), '--latest', '--passphrase-file', s.passphraseFile],
      { cwd: s.dir, env },
    );
    const ratio = median(dbflowMs) / median(shellMs);
    return {
      figures: [
        figure(
          SECTION,
          `base backup of ${round(dbMiB, 0)} MiB InnoDB, dbflow (mariabackup → zstd → openpgp → file)`,
          round(median(dbflowMs) / 1000, 1),
          's',
        ),
        figure(SECTION, 'base backup, dbflow with checksums: false (row counts only)', round(median(plainMs) / 1000, 1), 's'),
        figure(SECTION, 'base backup, shell (mariadb-backup | zstd -3 -T0 | gpg)', round(median(shellMs) / 1000, 1), 's'),
        figure(SECTION, 'base backup ratio dbflow / shell (dbflow also counts rows and checksums at the backup end)', round(ratio, 2), '×'),
        figure(SECTION, 'base backup ratio dbflow without checksums / shell', round(median(plainMs) / median(shellMs), 2), '×'),
        figure(
          SECTION,
          `restore --to-datadir --latest: base + ${round(binlogMiB, 0)} MiB binlog replayed (RTO)`,
          round(restore.wallMs / 1000, 1),
          's',
        ),
      ],
      details: {
        db_mib: dbMiB,
        dbflow_ms: dbflowMs,
        dbflow_no_checksums_ms: plainMs,
        shell_ms: shellMs,
        artifact_bytes: { dbflow: dbflowBytes, shell: shellBytes },
        binlog_mib: binlogMiB,
        rto_ms: restore.wallMs,
      },
    };
  } finally {
    await cleanup();
  }
}

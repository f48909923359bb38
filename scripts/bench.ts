// `npm run bench`: dbflow's performance figures, measured against the equivalent shell pipeline on
// the same machine in the same run (docs/benchmark.md). Prints a table (figure, value, target,
// PASS/FAIL), where the CPU goes, the load average of each section, and writes bench-data/results.json.
// Exit code 0 even when a target is missed (it is a report); non-zero only when the benchmark itself
// breaks.
//
//   BENCH_SIZE_MB=500   size of the SQLite source database in MiB (default 500; 50 with BENCH_QUICK)
//   BENCH_QUICK=1       a small smoke run
//   BENCH_RSS_FLAT=1    also run dbflow on a database of twice the size, to show that RSS stays flat
//   BENCH_ONLY=4,sqlite run only these sections: numbers, or words of their names (comma-separated; also pg, mysql)
//   BENCH_PG_SIZE_MB=1024  size of the PostgreSQL source database in MiB, as pg_database_size (64 with BENCH_QUICK);
//                       generated once and kept as the database dbflow_bench_<size>mb
//   BENCH_PG_FLAT=1     also run dbflow on a PostgreSQL database of 3× the size (peak RSS must stay flat)
//   BENCH_PG_REBUILD=1  regenerate the PostgreSQL source database(s) even when a current one is there
//   DBFLOW_BENCH_PG_URL the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_MYSQL_SIZE_MB=1024  size of the MariaDB source database in MiB, as data_length + index_length
//                       (64 with BENCH_QUICK); generated once and kept as the database dbflow_bench_<size>mb
//   BENCH_MYSQL_REBUILD=1  regenerate the MariaDB source database even when a current one is there
//   DBFLOW_BENCH_MYSQL_URL the MariaDB server (default mysql://root@127.0.0.1:3306/)
//   BENCH_ROUNDS=3     rounds of the PostgreSQL and MariaDB sections (2 with BENCH_QUICK): each round runs
//                       dbflow, the shell, dbflow with checksums off, the shell; then as many restore rounds
//   BENCH_COORD_SNAPSHOTS=50  coordinated snapshots over 3 participants under the causal writer (10 with BENCH_QUICK)
//   BENCH_MARKS=100    recovery marks over 3 throwaway servers under the causal writer (20 with BENCH_QUICK)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHELL_SCRIPT } from './bench/chain-runs.js';
import { coordinatedSection } from './bench/coordinated.js';
import { engineOverhead } from './bench/engine-overhead.js';
import { dropScratchDatabasesSync } from './bench/pg-server.js';
import { postgres, PG_SHELL_TEXT, type SectionResult } from './bench/postgres.js';
import { myCleanupSync } from './bench/mysql-server.js';
import { mysqlSection, MY_SHELL_TEXT } from './bench/mysql.js';
import { renderGrid, renderTable, writeResults, type Figure, type Table } from './bench/report.js';
import { throughput } from './bench/throughput.js';
import { BenchError, DATA, ensureBuild, scratchDir } from './bench/util.js';
import { validateTime } from './bench/validate-time.js';
import { binlogArchiveSection } from './bench/binlog-archive.js';
import { mariabackupSection, MARIABACKUP_SHELL } from './bench/mariabackup.js';
import { marksSection } from './bench/marks.js';
import { dashboardSection } from './bench/dashboard.js';
import { pitrRestoreSection } from './bench/pitr-restore.js';
import { walArchiveSection } from './bench/wal-archive.js';
import { copiesSection, COPIES_SHELL } from './bench/copies.js';
import { fleetSection } from './bench/fleet.js';

const quick = process.env.BENCH_QUICK === '1';
const sizeMiB = Number(process.env.BENCH_SIZE_MB ?? (quick ? 50 : 500));
const rssFlat = process.env.BENCH_RSS_FLAT === '1';
const pgSizeMiB = Number(process.env.BENCH_PG_SIZE_MB ?? (quick ? 64 : 1024));
const pgFlat = process.env.BENCH_PG_FLAT === '1';
const pgRebuild = process.env.BENCH_PG_REBUILD === '1';
const mySizeMiB = Number(process.env.BENCH_MYSQL_SIZE_MB ?? (quick ? 64 : 1024));
const myRebuild = process.env.BENCH_MYSQL_REBUILD === '1';
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 2 : 3));
for (const [name, v, unit] of [
  ['BENCH_SIZE_MB', sizeMiB, 'MiB '],
  ['BENCH_PG_SIZE_MB', pgSizeMiB, 'MiB '],
  ['BENCH_MYSQL_SIZE_MB', mySizeMiB, 'MiB '],
  ['BENCH_ROUNDS', rounds, ''],
] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`bench: ${name} must be a whole number ${unit ? `of ${unit}` : ''}≥ 1, not "${process.env[name]}"`);
    process.exit(2);
  }
}
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const tool = (cmd: string, args: string[]): string =>
  (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0]?.trim() || 'missing';

interface Section {
  name: string;
  fn: () => Promise<SectionResult>;
  /** The shell side it compares with, printed under the table. */
  shell?: string;
  /** Other words that select it in BENCH_ONLY. */
  aliases?: string[];
}
const sections: Section[] = [
  { name: '1 engine overhead (1,000-step no-op DAG)', fn: () => engineOverhead(log) },
  { name: '2 validate wall time (200-step pipeline, plugin packages)', aliases: ['plugin'], fn: () => validateTime(passFile, log) },
  {
    name: `3 quickstart chain throughput (${sizeMiB} MiB SQLite)`,
    fn: () => throughput({ sizeMiB, passFile, gnupgHome, rssFlat, log }),
    shell: `SQLite (paths in $SRC $TMP $OUT $PASS; $TMP in os.tmpdir(), where dbflow stages its snapshot too):\n${SHELL_SCRIPT}`,
  },
  {
    name: `4 PostgreSQL chain (${pgSizeMiB} MiB database${pgFlat ? `, and ${pgSizeMiB * 3} MiB` : ''})`,
    aliases: ['pg'],
    fn: () => postgres({ sizeMiB: pgSizeMiB, flat: pgFlat, rebuild: pgRebuild, rounds, passFile, gnupgHome, log }),
    shell: `PostgreSQL (database URL in $PGURL):\n${PG_SHELL_TEXT}`,
  },
  {
    name: `5 MariaDB chain and commit barrier (${mySizeMiB} MiB database)`,
    aliases: ['mysql'],
    fn: () => mysqlSection({ sizeMiB: mySizeMiB, rebuild: myRebuild, quick, rounds, passFile, gnupgHome, log }),
    shell: `MariaDB (database name in $DB, connection in the 0600 option file $MYCNF):\n${MY_SHELL_TEXT}`,
  },
  {
    name: '6 coordinated snapshot (3 participants)',
    fn: () => coordinatedSection({ quick, log }),
  },
  {
    name: '7 WAL archive: lag, sustained WAL rate, process-per-segment cost',
    aliases: ['wal', 'archive'],
    fn: () => walArchiveSection({ quick, log }),
  },
  {
    name: '8 point-in-time restore time (RTO: base backup + archived WAL)',
    aliases: ['pitr', 'rto'],
    fn: () => pitrRestoreSection({ quick, log }),
  },
  {
    name: '9 binlog archive (MariaDB): lag, sustained binlog rate',
    aliases: ['binlog'],
    fn: () => binlogArchiveSection({ quick, log }),
  },
  {
    name: `10 MariaDB physical base backup (${mySizeMiB} MiB) and restore to a point with as much binlog (RTO)`,
    aliases: ['mariabackup'],
    fn: () => mariabackupSection({ sizeMiB: mySizeMiB, rounds, passFile, gnupgHome, log }),
    shell: `MariaDB base backup (server port in $PORT):\n${MARIABACKUP_SHELL}`,
  },
  {
    name: '11 recovery marks (2 PostgreSQL + 1 MariaDB under the causal writer): commit-blocking time, marks per second',
    aliases: ['marks', 'mark'],
    fn: () => marksSection({ quick, log }),
  },
  {
    name: '12 dashboard (dbflow serve over 10,000 run records and 1,000 backups): overview, runs, metrics and backups pages',
    aliases: ['dashboard', 'serve'],
    fn: () => dashboardSection({ log }),
  },
  {
    name: `13 several copies (${sizeMiB} MiB SQLite): one backup to two file destinations at once vs one`,
    aliases: ['copies', 'copy', 'tee'],
    fn: () => copiesSection({ sizeMiB, passFile, gnupgHome, log }),
    shell: `Copies (paths in $SRC $TMP $PASS $A $B; $B empty for one copy):\n${COPIES_SHELL}`,
  },
  {
    name: '14 fleet (BullMQ on Redis): no-op jobs per second through the queue, start delay with 1, 3 and 10 workers',
    aliases: ['fleet', 'queue', 'redis'],
    fn: () => fleetSection({ quick, log }),
  },
];
// Sections run lazily (their closures use the passphrase file and gpg home made below).
// BENCH_ONLY: "4", "postgres", "1,3", "sqlite", "mysql" …: a number picks a section, a word those whose name
// contains it (or that have it as an alias).
const only = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((t) => t.trim().toLowerCase())
  .filter(Boolean);
const matches = (t: string, { name, aliases }: Section): boolean =>
  /^\d+$/.test(t) ? name.startsWith(`${t} `) : name.toLowerCase().includes(t) || (aliases ?? []).includes(t);
const selected = sections.filter((x) => !only.length || only.some((t) => matches(t, x)));
const unmatched = only.filter((t) => !sections.some((x) => matches(t, x)));
if (unmatched.length) {
  console.error(
    `bench: BENCH_ONLY=${process.env.BENCH_ONLY}: no section matches ${unmatched.join(', ')}; the sections are:\n${sections.map((x) => `  ${x.name}`).join('\n')}`,
  );
  process.exit(2);
}

// Secrets and gpg's home for the shell side: private, and removed at the end.
mkdirSync(DATA, { recursive: true });
const passFile = path.join(DATA, `bench-${process.pid}.passphrase`);
writeFileSync(passFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
const gnupgHome = scratchDir('gnupg', os.tmpdir());
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  spawnSync('gpgconf', ['--homedir', gnupgHome, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  rmSync(gnupgHome, { recursive: true, force: true });
  rmSync(passFile, { force: true });
  dropScratchDatabasesSync();
  myCleanupSync();
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`bench: ${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? '',
  memGiB: Math.round(os.totalmem() / 2 ** 30),
  loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  tools: {
    zstd: `zstd ${/v[\d.]+/.exec(tool('zstd', ['--version']))?.[0] ?? '?'}`,
    gpg: tool('gpg', ['--version']),
    sqlite3: tool('sqlite3', ['--version']).split(' ')[0] ?? '',
    pg_dump: tool('pg_dump', ['--version']),
    mariadb_dump: tool('mariadb-dump', ['--version']),
  },
};
log(
  `dbflow bench: ${quick ? 'QUICK, ' : ''}${rounds} rounds, ${sizeMiB} MiB SQLite database${rssFlat ? ', RSS flatness at 2×' : ''}, ${pgSizeMiB} MiB PostgreSQL database${pgFlat ? ', RSS flatness at 3×' : ''}, ${mySizeMiB} MiB MariaDB database; ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}`,
);
const busy = (): string | undefined => {
  const load = os.loadavg()[0] ?? 0;
  return load > machine.cpus * 0.5
    ? `load average ${load.toFixed(1)} on ${machine.cpus} CPUs: other work is running, so the figures are noisy`
    : undefined;
};
const busyAtStart = busy();
if (busyAtStart) log(`bench: WARNING: ${busyAtStart}`);

const figures: Figure[] = [];
const tables: Table[] = [];
const details: Record<string, unknown> = {};
const broken: string[] = [];
// The load average (1, 5, 15 min) when each section starts and ends: other work on the machine makes figures noisy.
const loadAvg: { section: string; start: number[]; end: number[] }[] = [];
const load = (): number[] => os.loadavg().map((x) => Math.round(x * 100) / 100);
const started = performance.now();
try {
  ensureBuild(log);
  for (const { name, fn } of selected) {
    log(`\n${name}`);
    const t0 = performance.now();
    const l = { section: name, start: load(), end: [] as number[] };
    loadAvg.push(l);
    log(`  load average at start: ${l.start.join(' ')}`);
    try {
      const r = await fn();
      figures.push(...r.figures);
      tables.push(...(r.tables ?? []));
      details[name] = r.details;
      // Some sections measure what they can and report the rest as broken.
      for (const m of r.broken ?? []) {
        broken.push(`${name}: ${m}`);
        log(`  BROKEN: ${m}`);
      }
      log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      // One broken section does not hide the figures of the others.
      const message = err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
      broken.push(`${name}: ${message}`);
      log(`  BROKEN: ${message}`);
    }
    l.end = load();
    log(`  load average at end: ${l.end.join(' ')}`);
  }
} catch (err) {
  broken.push(err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  log(`bench: ${broken.at(-1)}`);
} finally {
  cleanup();
}

const totalS = (performance.now() - started) / 1000;
console.log(
  `\ndbflow bench — ${machine.date}, ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, ${machine.tools.zstd}, ${machine.tools.gpg}\n`,
);
console.log(renderTable(figures));
for (const t of tables) console.log(`\n${renderGrid(t)}`);
if (loadAvg.length) {
  console.log(`\nload average (1, 5, 15 min) on ${machine.cpus} CPUs, at the start → end of each section:`);
  for (const l of loadAvg) console.log(`  ${l.start.join(' ')} → ${l.end.join(' ')}  ${l.section}`);
}
const shells = selected.flatMap((x) => (x.shell && x.name in details ? [x.shell] : []));
if (shells.length) {
  console.log('\nshell side:');
  for (const text of shells) console.log(text.replace(/^/gm, '  '));
  console.log("  (gpg's default would add a ZIP layer over the zstd output; dbflow's encrypt writes none, hence --compress-algo none.)");
}
const busyAtEnd = busy();
if (busyAtStart || busyAtEnd)
  console.log(
    `\nWARNING: ${busyAtStart ?? busyAtEnd} (1-min load average at start ${machine.loadAvgAtStart[0]}, at end ${os.loadavg()[0]?.toFixed(2)}).`,
  );
const missed = figures.filter((f) => f.pass === false).length;
const checked = figures.filter((f) => f.pass !== undefined).length;
console.log(`\n${checked - missed}/${checked} targets met; bench took ${totalS.toFixed(0)} s.`);
const file = writeResults({
  machine,
  options: { quick, rounds, sizeMiB, rssFlat, pgSizeMiB, pgFlat, pgRebuild, mySizeMiB, myRebuild, only: selected.map((x) => x.name) },
  totalS,
  loadAvg,
  figures,
  tables,
  broken,
  details,
});
console.log(`figures written to ${path.relative(process.cwd(), file)}`);
if (broken.length) {
  console.error(`\nbench: BROKEN — ${broken.length} section(s) could not be measured:\n${broken.join('\n')}`);
  process.exitCode = 1;
}

// 9. Binlog archiving (MariaDB): archive lag (commit → the binlog holding it stored) under a steady writer with the
// default flush, and the binlog rate the archiver sustains with zstd + openpgp when it drains a backlog.
import { readFileSync, writeFileSync } from 'node:fs';
import type { RowDataPacket } from 'mysql2/promise';
import { binlogSetup, type BinlogSetup } from '../../test/helpers/binlog-archive.js';
import { withConnection, withDatabase } from '../../test/helpers/mysql.js';
import { archiveVerbose, benchContext, percentile, until } from './archive-run.js';
import { figure, type Figure } from './report.js';
import { BenchError, MiB, round } from './util.js';

const SECTION = '9 binlog archive';

interface Stored {
  at: number;
  /** The stored file's name (`.partial` for the open one). */
  name: string;
  file: string;
  /** Up to this position of `file`. */
  position: number;
  bytes: number;
}

// `dbflow archive -v`, with every "stored <file> (<n> bytes, up to <binlog>:<pos>)" line collected as it is written.
function archiver(s: BinlogSetup, stored: Stored[]): { stop: () => Promise<void> } {
  return archiveVerbose(s, (line) => {
    const m = /stored (\S+) \((\d+) bytes, up to (\S+):(\d+)\)/.exec(line);
    if (m) stored.push({ at: Date.now(), name: m[1]!, bytes: Number(m[2]), file: m[3]!, position: Number(m[4]) });
  });
}

// Whether `x` holds the binlog position file:position (the same file that far, or a later file).
const covers = (x: Stored, file: string, position: number): boolean => x.file > file || (x.file === file && x.position >= position);

export async function binlogArchiveSection(o: {
  quick: boolean;
  log: (s: string) => void;
}): Promise<{ figures: Figure[]; details: unknown }> {
  const { t, cleanup } = benchContext();
  try {
    // Durable commits, as in production: each is in the binlog (synced) when it returns.
    const s = await binlogSetup(t, ['--binlog-format=ROW', '--sync-binlog=1', '--max-binlog-size=64M']);
    if (!s) throw new BenchError('no throwaway MariaDB');
    writeFileSync(s.pipeline, readFileSync(s.pipeline, 'utf8').replace('flush: 1s', 'flush: 5s'));
    const app = withDatabase(s.my.url, 'app');
    await withConnection(app, (c) => c.query('CREATE TABLE commits (id INT AUTO_INCREMENT PRIMARY KEY, pad TEXT)'));

    // Archive lag under a steady writer (10 commits/s), default flush (5 s).
    const stored: Stored[] = [];
    let a = archiver(s, stored);
    await new Promise((r) => setTimeout(r, 3000));
    const seconds = o.quick ? 20 : 40;
    o.log(`  archive lag: a writer commits 10 times a second for ${seconds} s`);
    const commits: { at: number; file: string; position: number }[] = [];
    await withConnection(app, async (c) => {
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) {
        await c.query("INSERT INTO commits (pad) VALUES (REPEAT('x', 100))");
        const at = Date.now();
        const [rows] = await c.query<RowDataPacket[]>('SHOW MASTER STATUS');
        commits.push({ at, file: String(rows[0]!.File), position: Number(rows[0]!.Position) });
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    const last = commits.at(-1)!;
    await until(() => stored.some((x) => covers(x, last.file, last.position)), 30_000, 'the last commit stored');
    const lags = commits.map((c) => stored.find((x) => x.at >= c.at && covers(x, c.file, c.position))!.at - c.at);
    await a.stop();

    // Throughput: bulk inserts fill several binlog files while the archiver is stopped; then it drains the backlog.
    const rows = o.quick ? 200_000 : 600_000;
    o.log(`  throughput: ${rows} rows of 500 bytes written while the archiver is stopped, then drained`);
    await withConnection(app, async (c) => {
      await c.query('CREATE TABLE bulk (id INT PRIMARY KEY, pad VARCHAR(600))');
      for (let i = 0; i < rows; i += 20_000)
        await c.query(`INSERT INTO bulk SELECT seq, REPEAT(MD5(seq), 16) FROM seq_${i + 1}_to_${i + 20_000}`);
      await c.query('FLUSH BINARY LOGS');
    });
    const [logs] = await withConnection(s.my.url, (c) => c.query<RowDataPacket[]>('SHOW BINARY LOGS'));
    const files = logs.map((r) => ({ name: String(r.Log_name), bytes: Number(r.File_size) }));
    const backlog = files.filter((f) => f.name >= last.file).slice(0, -1);
    const drained: Stored[] = [];
    const t0 = Date.now();
    a = archiver(s, drained);
    const lastClosed = backlog.at(-1)!.name;
    await until(() => drained.some((x) => x.name === lastClosed), 600_000, 'the backlog stored');
    const seconds2 = (Date.now() - t0) / 1000;
    await a.stop();
    const backlogBytes = backlog.reduce((n, f) => n + f.bytes, 0);
    const figures = [
      figure(SECTION, 'archive lag p50 (commit → binlog stored), flush 5s', round(percentile(lags, 50) / 1000, 2), 's'),
      figure(SECTION, 'archive lag p99', round(percentile(lags, 99) / 1000, 2), 's'),
      figure(SECTION, 'archive lag max', round(Math.max(...lags) / 1000, 2), 's'),
      figure(
        SECTION,
        'binlog rate the archiver sustains draining a backlog (zstd 3 + openpgp, file://)',
        round(backlogBytes / MiB / seconds2, 1),
        'MiB/s',
      ),
    ];
    return {
      figures,
      details: { commits: commits.length, backlog: { files: backlog.length, bytes: backlogBytes, seconds: round(seconds2, 1) } },
    };
  } finally {
    await cleanup();
  }
}

// 7. Continuous WAL archiving: archive lag (commit → the WAL holding it stored), the WAL rate the archiver sustains with
// zstd + openpgp against what pgbench generates, and what a node process per segment (an archive_command helper) would cost.
import { execa } from 'execa';
import pg from 'pg';
import { withPassword } from '../../test/helpers/postgres.js';
import { walSetup, type WalSetup } from '../../test/helpers/wal-archive.js';
import { archiveVerbose, benchContext, percentile, until } from './archive-run.js';
import { figure, type Figure } from './report.js';
import { BenchError, CLI, median, MiB, round } from './util.js';

const SECTION = '7 WAL archive';

// An LSN as a number of bytes.
const lsnBytes = (lsn: string): number => {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
};

interface Stored {
  at: number;
  file: string;
  position: number;
}

// `dbflow archive -v`, with every "stored <file> (…, up to <lsn>)" line collected as it is written.
function archiver(s: WalSetup, stored: Stored[]): { stop: () => Promise<void> } {
  return archiveVerbose(s, (line) => {
    const m = /stored (\S+) \(\d+ bytes, up to ([0-9A-F]+\/[0-9A-F]+)\)/.exec(line);
    if (m) stored.push({ at: Date.now(), file: m[1]!, position: lsnBytes(m[2]!) });
  });
}

export async function walArchiveSection(o: { quick: boolean; log: (s: string) => void }): Promise<{ figures: Figure[]; details: unknown }> {
  const { t, defer, cleanup } = benchContext();
  try {
    // synchronous_commit on: a commit returns once its WAL is flushed, as in production (fsync stays off in the throwaway).
    const s = await walSetup(t, ['synchronous_commit=on', 'max_wal_size=4GB'], '5s');
    if (!s) throw new BenchError('no throwaway PostgreSQL');
    const client = new pg.Client({ connectionString: withPassword(s.pg.url, s.pg.password) });
    await client.connect();
    defer(() => client.end());
    const lsn = async (): Promise<number> =>
      lsnBytes((await client.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l);
    await client.query('CREATE TABLE commits (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), pad text)');

    // Archive lag under a steady writer (10 commits/s), default flush (5 s).
    const stored: Stored[] = [];
    let a = archiver(s, stored);
    await new Promise((r) => setTimeout(r, 3000)); // the slot and the receiver
    const seconds = o.quick ? 20 : 40;
    o.log(`  archive lag: a writer commits 10 times a second for ${seconds} s`);
    const commits: { at: number; lsn: number }[] = [];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      await client.query("INSERT INTO commits (pad) VALUES (repeat('x', 100))");
      commits.push({ at: Date.now(), lsn: await lsn() });
      await new Promise((r) => setTimeout(r, 100));
    }
    const lastLsn = commits.at(-1)!.lsn;
    await until(() => stored.some((x) => x.position >= lastLsn), 30_000, 'the last commit stored');
    const lags = commits.map((c) => stored.find((x) => x.position >= c.lsn && x.at >= c.at)!.at - c.at);
    await a.stop();

    // Throughput: pgbench generates WAL while the archiver is stopped (the slot keeps it); then the archiver drains the backlog.
    const scale = o.quick ? 10 : 30;
    const env = { ...process.env, PGPASSWORD: s.pg.password };
    await execa('pgbench', ['-i', '-q', '-s', String(scale), '-h', '127.0.0.1', '-p', String(s.pg.port), '-U', 'postgres', 'postgres'], {
      env,
    });
    const benchS = o.quick ? 10 : 20;
    const before = await lsn();
    await execa(
      'pgbench',
      ['-T', String(benchS), '-c', '4', '-j', '2', '-h', '127.0.0.1', '-p', String(s.pg.port), '-U', 'postgres', 'postgres'],
      { env },
    );
    const after = await lsn();
    const walRate = (after - before) / MiB / benchS;
    const switched = (await client.query<{ l: string }>('SELECT pg_switch_wal()::text AS l')).rows[0]!.l;
    const target = lsnBytes(switched);
    const drained: Stored[] = [];
    const t0 = Date.now();
    a = archiver(s, drained);
    await until(() => drained.some((x) => !x.file.endsWith('.partial') && x.position >= target - 1), 600_000, 'the backlog stored');
    const t1 = Date.now();
    await a.stop();
    const segments = drained.filter((x) => !x.file.endsWith('.partial'));
    const first = segments[0]!;
    const last = segments.at(-1)!;
    const sustained = ((segments.length - 1) * 16) / ((last.at - first.at) / 1000);

    // A node process per segment: `node -e 0` and the dbflow CLI's start, times segments/s at pgbench's WAL rate.
    const starts = async (args: string[]): Promise<number> => {
      const xs: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t2 = performance.now();
        await execa(process.execPath, args);
        xs.push(performance.now() - t2);
      }
      return median(xs);
    };
    const nodeMs = await starts(['-e', '0']);
    const cliMs = await starts([CLI, '--version']);
    const perSecond = walRate / 16;
    const figures = [
      figure(SECTION, 'archive lag p50 (commit → WAL stored), flush 5s', round(percentile(lags, 50) / 1000, 2), 's'),
      figure(SECTION, 'archive lag p99', round(percentile(lags, 99) / 1000, 2), 's'),
      figure(SECTION, 'archive lag max', round(Math.max(...lags) / 1000, 2), 's'),
      figure(SECTION, 'WAL rate pgbench generates (-c 4)', round(walRate, 1), 'MiB/s'),
      figure(SECTION, 'WAL rate the archiver sustains (zstd 3 + openpgp, file://)', round(sustained, 1), 'MiB/s'),
      figure(SECTION, 'node -e 0 start (archive_command helper, per segment)', round(nodeMs, 1), 'ms'),
      figure(SECTION, 'dbflow --version start (per segment)', round(cliMs, 1), 'ms'),
      figure(
        SECTION,
        'helper process CPU at pgbench WAL rate (dbflow start × segments/s)',
        round((cliMs * perSecond) / 10, 1),
        '% of a core',
      ),
    ];
    return {
      figures,
      details: {
        commits: commits.length,
        lags_ms: lags,
        wal_rate_mib_s: walRate,
        drained_segments: segments.length,
        drain_s: (t1 - t0) / 1000,
      },
    };
  } finally {
    await cleanup();
  }
}

// 8. Point-in-time restore: the time to a running cluster (RTO) from a base backup of a ~1 GB cluster and ~1 GB of
// archived WAL to replay: download + decode + untar the base, fetch and check the WAL, recover, start.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { withPassword } from '../../test/helpers/postgres.js';
import { BASE_BACKUP_STEPS, systemFolder, walSetup } from '../../test/helpers/wal-archive.js';
import { benchContext } from './archive-run.js';
import { figure, type Figure } from './report.js';
import { BenchError, CLI, MiB, round } from './util.js';

const SECTION = '8 PITR restore';

const lsnBytes = (lsn: string): number => {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
};

export async function pitrRestoreSection(o: {
  quick: boolean;
  log: (s: string) => void;
}): Promise<{ figures: Figure[]; details: unknown }> {
  const { t, defer, cleanup } = benchContext();
  const cli = async (args: string[], cwd: string, env: Record<string, string>): Promise<void> => {
    const r = await execa(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, reject: false });
    if (r.exitCode !== 0) throw new BenchError(`dbflow ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  };
  try {
    const s = await walSetup(t, ['max_wal_size=4GB', 'checkpoint_timeout=30min'], '5s', BASE_BACKUP_STEPS);
    if (!s) throw new BenchError('no throwaway PostgreSQL');
    const client = new pg.Client({ connectionString: withPassword(s.pg.url, s.pg.password) });
    await client.connect();
    defer(() => client.end());
    const lsn = async (): Promise<number> =>
      lsnBytes((await client.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l);
    const pgbench = (args: string[]): Promise<unknown> =>
      execa('pgbench', [...args, '-h', '127.0.0.1', '-p', String(s.pg.port), '-U', 'postgres', 'postgres'], {
        env: { ...process.env, PGPASSWORD: s.pg.password },
      });
    // ~15 MiB per pgbench scale unit.
    const targetMiB = o.quick ? 128 : 1024;
    o.log(`${SECTION}: a ${targetMiB} MiB cluster (pgbench), a base backup, then ${targetMiB} MiB of WAL archived`);
    await pgbench(['-i', '-q', '-s', String(Math.round(targetMiB / 15))]);
    const archiver = execa(process.execPath, [CLI, 'archive', s.pipeline], {
      cwd: s.dir,
      env: { ...process.env, ...s.env },
      reject: false,
    });
    defer(() => archiver.kill('SIGKILL'));
    await cli(['run', s.pipeline], s.dir, s.env);
    const start = await lsn();
    while ((await lsn()) - start < targetMiB * MiB) await pgbench(['-T', '10', '-c', '4', '-j', '2']);
    const wal = ((await lsn()) - start) / MiB;
    const last = (await client.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0]!.f;
    const end = Date.now() + 30 * 60_000;
    while (!existsSync(path.join(systemFolder(s.root), `${last}.json`))) {
      if (Date.now() > end) throw new BenchError(`the archive did not store ${last} within 30 minutes`);
      await new Promise((r) => setTimeout(r, 500));
    }
    archiver.kill('SIGTERM');
    await archiver;
    const cluster =
      Number((await client.query<{ b: string }>('SELECT sum(pg_database_size(oid))::text AS b FROM pg_database')).rows[0]!.b) / MiB;
    o.log(`${SECTION}: restoring ${round(cluster, 0)} MiB of cluster with ${round(wal, 0)} MiB of WAL to replay`);
    const t0 = performance.now();
    await cli(
      ['restore', 'file://./repo', '--to-datadir', path.join(s.dir, 'restored'), '--latest', '--passphrase-file', s.passphraseFile],
      s.dir,
      s.env,
    );
    const seconds = (performance.now() - t0) / 1000;
    return {
      figures: [
        figure(
          SECTION,
          `restore --latest: ${round(cluster, 0)} MiB cluster + ${round(wal, 0)} MiB WAL to a started cluster (RTO)`,
          round(seconds, 1),
          's',
        ),
      ],
      details: { cluster_mib: cluster, wal_mib: wal, seconds },
    };
  } finally {
    await cleanup();
  }
}

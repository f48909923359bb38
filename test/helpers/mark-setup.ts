// Recovery marks over three throwaway servers: PostgreSQL db1, MariaDB mq, PostgreSQL db2 (the causal writer's order),
// each archived, with a pipeline that takes a base backup of each and marks all three at once.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { ITEMS_MY, ITEMS_PG, type CausalTargets } from './causal-writer.js';
import { connectionOptions, throwawayMariadb, withConnection, withDatabase as myWithDatabase, type ThrowawayMariadb } from './mysql.js';
import { requireTools, throwawayPostgres, withClient, withDatabase, withPassword, type ThrowawayPostgres } from './postgres.js';
import { archiveSection, baseBackupSteps, pipelineFolder } from './wal-archive.js';

/** The marked databases, in the writer's order; each is also the name of its database on its server. */
export const MARKED = ['db1', 'mq', 'db2'] as const;
export type Marked = (typeof MARKED)[number];

/** What can differ between copies of the pipeline. */
export interface MarkPipelineOptions {
  /** `marks.barrier_timeout` (left out: the default). */
  barrierTimeout?: string;
  /** mq's URL (default: the throwaway MariaDB's). */
  mqUrl?: string;
}

export interface MarkSetup {
  /** The pipeline's folder (mode 0755; its repository is `<dir>/repo`). */
  dir: string;
  /** `<dir>/marks.yaml`. */
  pipeline: string;
  /** The repository of backups and marks, as the pipeline names it relative to `dir`. */
  repo: string;
  passphraseFile: string;
  /** The passwords (secrets) and the state folder, for every dbflow command in `dir`. */
  env: Record<string, string>;
  pg: { db1: ThrowawayPostgres; db2: ThrowawayPostgres };
  my: ThrowawayMariadb;
  /** Each database's URL, without the password (PostgreSQL: `pg.<name>.password`; MariaDB: root without one). */
  urls: Record<Marked, string>;
  /** Where the causal writer writes (passwords included). */
  targets: CausalTargets;
  /** The pipeline's text with `o` (marks.yaml is `yaml()`), for copies beside it. */
  yaml: (o?: MarkPipelineOptions) => string;
}

/**
 * Two throwaway PostgreSQL clusters and a throwaway MariaDB (binlog ROW), with the database db1, mq, db2 on each
 * holding the writer's `items` table, and `marks.yaml`: their archive (to `{{ vars.repo }}/wal`, zstd + openpgp,
 * flush 1s), a base backup of each (basebackup, mariabackup) into the repository, and `marks:` over all three.
 * Undefined when a tool or server is missing (and CI is not set).
 */
export async function markSetup(t: Pick<TestContext, 'skip' | 'after'>): Promise<MarkSetup | undefined> {
  if (!(await requireTools(t, 'pg_basebackup', 'pg_receivewal', 'zstd', 'mariadb-backup', 'mariadb-binlog', 'mariadb'))) return undefined;
  const [db1, db2, my] = await Promise.all([
    throwawayPostgres(t),
    throwawayPostgres(t),
    throwawayMariadb(t, { args: ['--binlog-format=ROW'] }),
  ]);
  if (!db1 || !db2 || !my) return undefined;
  const pgDatabase = async (server: ThrowawayPostgres, name: string): Promise<string> => {
    await withClient(server.url, (c) => c.query(`CREATE DATABASE ${name}`), server.password);
    const url = withDatabase(server.url, name);
    await withClient(url, (c) => c.query(ITEMS_PG), server.password);
    return url;
  };
  const mq = myWithDatabase(my.url, 'mq');
  await withConnection(my.url, (c) => c.query(`CREATE DATABASE mq; USE mq; ${ITEMS_MY}`));
  const urls = { db1: await pgDatabase(db1, 'db1'), mq, db2: await pgDatabase(db2, 'db2') };

  const { dir, passphraseFile } = pipelineFolder(t, 'dbflow-marks-');
  const yaml = (o: MarkPipelineOptions = {}): string => `version: 1
name: marktest
secrets:
  passphrase: { file: ./passphrase }
  db1_password: { env: MARK_DB1_PASSWORD }
  db2_password: { env: MARK_DB2_PASSWORD }
vars:
  repo: "file://./repo"
databases:
  db1: { driver: postgres, url: "${urls.db1}", password: "{{ secrets.db1_password }}" }
  mq: { driver: mysql, url: "${o.mqUrl ?? urls.mq}" }
  db2: { driver: postgres, url: "${urls.db2}", password: "{{ secrets.db2_password }}" }
${archiveSection(MARKED)}marks:
  databases: [${MARKED.join(', ')}]
  to: "{{ vars.repo }}"
  every: 5s
${o.barrierTimeout === undefined ? '' : `  barrier_timeout: ${o.barrierTimeout}\n`}steps:
${baseBackupSteps('db1', 'basebackup', 'base.tar', '_db1')}${baseBackupSteps('mq', 'mariabackup', 'xbstream', '_mq')}${baseBackupSteps('db2', 'basebackup', 'base.tar', '_db2')}`;
  const pipeline = path.join(dir, 'marks.yaml');
  writeFileSync(pipeline, yaml());
  return {
    dir,
    pipeline,
    repo: 'file://./repo',
    passphraseFile,
    env: { MARK_DB1_PASSWORD: db1.password, MARK_DB2_PASSWORD: db2.password, DBFLOW_STATE_DIR: path.join(dir, 'state') },
    pg: { db1, db2 },
    my,
    urls,
    targets: {
      db1: withPassword(urls.db1, db1.password),
      mq: connectionOptions(mq),
      db2: withPassword(urls.db2, db2.password),
    },
    yaml,
  };
}

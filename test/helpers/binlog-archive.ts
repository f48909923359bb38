// A throwaway MariaDB whose pipeline dumps database `app` and archives the server's binary log: for binlog tests.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { requireMyBackupTools, throwawayMariadb, withConnection, type ThrowawayMariadb } from './mysql.js';
import { requireTools } from './postgres.js';

/** A throwaway MariaDB with database `app` and a pipeline that dumps it and archives its binary log to <dir>/repo/wal. */
export interface BinlogSetup {
  my: ThrowawayMariadb;
  dir: string;
  pipeline: string;
  root: string;
  passphraseFile: string;
  env: Record<string, string>;
}

// A throwaway MariaDB (with `args`) holding database `app`, and `archive.yaml` archiving its binary log to <dir>/repo/binlog.
export async function binlogSetup(
  t: Pick<TestContext, 'skip' | 'after'>,
  args: string[] = ['--binlog-format=ROW'],
  user = 'root',
): Promise<BinlogSetup | undefined> {
  if (!(await requireMyBackupTools(t)) || !(await requireTools(t, 'mariadb-binlog', 'zstd'))) return undefined;
  const my = await throwawayMariadb(t, { args });
  if (!my) return undefined;
  await withConnection(my.url, (c) => c.query('CREATE DATABASE app'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-binlog-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passphraseFile = path.join(dir, 'passphrase');
  writeFileSync(passphraseFile, 'correct horse battery staple\n');
  const pipeline = path.join(dir, 'archive.yaml');
  writeFileSync(
    pipeline,
    `version: 1
name: binlogtest
secrets:
  passphrase: { file: ./passphrase }
${user === 'root' ? '' : '  db_password: { env: BINLOG_DB_PASSWORD }\n'}vars:
  repo: "file://./repo"
databases:
  main: { driver: mysql, url: "mysql://${user}@127.0.0.1:${my.port}/app"${user === 'root' ? '' : ', password: "{{ secrets.db_password }}"'} }
archive:
  main:
    to: "{{ vars.repo }}/wal"
    compress: { algorithm: zstd, level: 3 }
    encrypt: { passphrase: "{{ secrets.passphrase }}" }
    flush: 1s
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [main] } }
  - { id: dump, uses: dump, with: { database: main, snapshot: snapshot } }
  - { id: upload, uses: upload, input: dump, with: { to: "{{ vars.repo }}/{{ run.id }}/main.sql" } }
`,
  );
  return { my, dir, pipeline, root: path.join(dir, 'repo', 'wal'), passphraseFile, env: { DBFLOW_STATE_DIR: path.join(dir, 'state') } };
}

// Backups of MariaDB through the CLI: the pipeline, its environment, stock-tools restores.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { connectionOptions } from './mysql.js';
import { PASSPHRASE, TEST_STEPS_PLUGIN } from './backup-run.js';

/** What varies between the test pipelines. */
export interface MyPipelineOptions {
  url: string;
  /** Adds the `db_password` secret (env TEST_MY_PASSWORD) as the database's `password`. */
  password?: boolean;
  options?: Record<string, unknown>;
  /** A `throttle` transform between dump and compress, waiting this long after each chunk. */
  throttleMs?: number;
  /** Steps (flow mappings as objects) that run after the snapshot; the dump needs them. */
  between?: Record<string, unknown>[];
  /** Steps that run once the upload is done, while the snapshot is still held. */
  afterUpload?: Record<string, unknown>[];
}

/** The YAML of a backup of one database `app`: snapshot → dump → zstd → OpenPGP → file → restore-test (target: scratch, the scratch database these tests follow; the throwaway default has its own tests) → rowcount-check. */
export function myBackupPipeline(o: MyPipelineOptions): string {
  const db = {
    driver: 'mysql',
    url: o.url,
    ...(o.password && { password: '{{ secrets.db_password }}' }),
    ...(o.options && { options: o.options }),
  };
  const throttle = o.throttleMs !== undefined;
  const between = (o.between ?? []).map((s) => `  - ${JSON.stringify({ needs: ['snapshot'], ...s })}\n`).join('');
  const after = (o.afterUpload ?? []).map((s) => `  - ${JSON.stringify({ needs: ['upload'], ...s })}\n`).join('');
  const needs = o.between?.length ? `needs: ${JSON.stringify(o.between.map((s) => s.id))}, ` : '';
  const plugins = throttle || between || after ? `plugins: ${JSON.stringify([TEST_STEPS_PLUGIN])}\n` : '';
  const restoreNeeds = o.afterUpload?.length ? `needs: ${JSON.stringify(o.afterUpload.map((s) => s.id))}, ` : '';
  return `version: 1
name: mytest
timeout: 3m
${plugins}secrets:
  passphrase: { env: TEST_PASSPHRASE }
${o.password ? '  db_password: { env: TEST_MY_PASSWORD }\n' : ''}databases:
  app: ${JSON.stringify(db)}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
${between}  - { id: dump, uses: dump, ${needs}with: { database: app, snapshot: snapshot } }
${throttle ? `  - { id: throttle, uses: throttle, input: dump, with: { delay_ms: ${o.throttleMs} } }\n` : ''}  - { id: compress, uses: compress, input: ${throttle ? 'throttle' : 'dump'}, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.sql.zst.pgp" } }
${after}  - { id: restore_test, uses: restore-test, ${restoreNeeds}with: { from: upload, target: scratch, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

/** The environment of a backup run: the passphrase, and the database password when given. */
export function myBackupEnv(password?: string): Record<string, string> {
  return { TEST_PASSPHRASE: PASSPHRASE, ...(password !== undefined && { TEST_MY_PASSWORD: password }) };
}

// The stock tools' connection to the database at `url` (the password, if any, in a 0600 option file).
function clientArgs(url: string, work: string): string[] {
  const o = connectionOptions(url);
  const file = path.join(work, 'client.cnf');
  const lines = ['[client]', `user=${o.user}`, ...(o.socketPath ? [`socket=${o.socketPath}`] : [`host=${o.host}`, `port=${o.port}`])];
  if (o.password) lines.push(`password="${o.password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return [`--defaults-extra-file=${file}`, String(o.database)];
}

/** `gpg --decrypt | zstd -d`: the plain SQL dump of an artifact, as text. */
export async function decryptArtifact(artifact: string, work: string): Promise<string> {
  const { env } = gpgSetup(work, artifact);
  const r = await execa('bash', ['-o', 'pipefail', '-c', `${DECRYPT}`], { env, stripFinalNewline: false });
  return r.stdout;
}

const DECRYPT = 'gpg --batch --quiet --homedir "$GH" --pinentry-mode loopback --passphrase-file "$PF" --decrypt "$ARTIFACT" | zstd -d -q';

function gpgSetup(work: string, artifact: string): { env: Record<string, string> } {
  const home = path.join(work, 'gnupg');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const passFile = path.join(work, 'passphrase');
  writeFileSync(passFile, PASSPHRASE, { mode: 0o600 });
  return { env: { GH: home, PF: passFile, ARTIFACT: artifact } };
}

/** Restores an artifact with stock tools alone: `gpg --decrypt | zstd -d | mariadb <db>`. */
export async function stockRestore(artifact: string, targetUrl: string, work: string): Promise<void> {
  const { env } = gpgSetup(work, artifact);
  const [defaults, database] = clientArgs(targetUrl, work);
  await execa('bash', ['-o', 'pipefail', '-c', `${DECRYPT} | mariadb "$DEFAULTS" "$DB"`], {
    env: { ...env, DEFAULTS: defaults!, DB: database! },
  });
}

/** The `-- CHANGE MASTER TO` position in a dump's header (file:position), if any. */
export function dumpHeaderPosition(sql: string): string | undefined {
  const m = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m.exec(sql);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

// Backups of PostgreSQL through the CLI: the pipeline, its environment, stock-tools restores, pg_dump processes.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { PASSPHRASE, TEST_STEPS_PLUGIN } from './backup-run.js';
import { descendants, type ProcessInfo } from './processes.js';

/** What varies between the test pipelines. */
export interface PipelineOptions {
  url: string;
  /** Adds the `pg_password` secret (env TEST_PG_PASSWORD) as the database's `password`. */
  password?: boolean;
  options?: Record<string, unknown>;
  /** Steps between snapshot and dump (flow mappings as objects); the dump needs them. */
  between?: Record<string, unknown>[];
  /** A `throttle` transform between dump and compress, waiting this long after each chunk. */
  throttleMs?: number;
  /** File name of the artifact (default app.dump.zst.pgp). */
  artifact?: string;
}

/** The YAML of a backup of one database `app`: snapshot → dump → zstd → OpenPGP → file → restore-test (target: scratch, the scratch database these tests follow; the throwaway default has its own tests) → rowcount-check. */
export function backupPipeline(o: PipelineOptions): string {
  const db = {
    driver: 'postgres',
    url: o.url,
    ...(o.password && { password: '{{ secrets.pg_password }}' }),
    ...(o.options && { options: o.options }),
  };
  const plugins = o.between?.length || o.throttleMs !== undefined ? `plugins: ${JSON.stringify([TEST_STEPS_PLUGIN])}\n` : '';
  const between = (o.between ?? []).map((s) => `  - ${JSON.stringify({ needs: ['snapshot'], ...s })}\n`).join('');
  const needs = o.between?.length ? `needs: ${JSON.stringify(o.between.map((s) => s.id))}, ` : '';
  const throttle =
    o.throttleMs !== undefined ? `  - { id: throttle, uses: throttle, input: dump, with: { delay_ms: ${o.throttleMs} } }\n` : '';
  return `version: 1
name: pgtest
timeout: 3m
${plugins}secrets:
  passphrase: { env: TEST_PASSPHRASE }
${o.password ? '  pg_password: { env: TEST_PG_PASSWORD }\n' : ''}databases:
  app: ${JSON.stringify(db)}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
${between}  - { id: dump, uses: dump, ${needs}with: { database: app, snapshot: snapshot } }
${throttle}  - { id: compress, uses: compress, input: ${throttle ? 'throttle' : 'dump'}, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/${o.artifact ?? 'app.dump.zst.pgp'}" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, target: scratch, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

/** The environment of a backup run: the passphrase, and the database password when given. */
export function backupEnv(password?: string): Record<string, string> {
  return { TEST_PASSPHRASE: PASSPHRASE, ...(password !== undefined && { TEST_PG_PASSWORD: password }) };
}

/**
 * Restores an artifact with stock tools: `gpg --decrypt | zstd -d | pg_restore`, or for the directory
 * format `… | tar -x` and `pg_restore -Fd`. `work` is a folder for gpg's home and the extracted files.
 */
export async function stockRestore(
  artifact: string,
  targetUrl: string,
  work: string,
  options: { directory?: boolean; password?: string } = {},
): Promise<void> {
  const home = path.join(work, 'gnupg');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const passFile = path.join(work, 'passphrase');
  writeFileSync(passFile, PASSPHRASE, { mode: 0o600 });
  const decrypt = 'gpg --batch --quiet --homedir "$GH" --pinentry-mode loopback --passphrase-file "$PF" --decrypt "$ARTIFACT" | zstd -d -q';
  const env = {
    GH: home,
    PF: passFile,
    ARTIFACT: artifact,
    TARGET: targetUrl,
    ...(options.password !== undefined && { PGPASSWORD: options.password }),
  };
  if (!options.directory) {
    await execa('bash', ['-o', 'pipefail', '-c', `${decrypt} | pg_restore --no-owner --clean --if-exists --exit-on-error -d "$TARGET"`], {
      env,
    });
    return;
  }
  const out = path.join(work, 'extracted');
  mkdirSync(out);
  await execa('bash', ['-o', 'pipefail', '-c', `${decrypt} | tar -x -C "$OUT"`], { env: { ...env, OUT: out } });
  const toc = [out, ...readdirSync(out, { recursive: true, encoding: 'utf8' }).map((f) => path.join(out, f))].find((p) =>
    existsSync(path.join(p, 'toc.dat')),
  );
  if (!toc) throw new Error(`no toc.dat in the extracted artifact: ${readdirSync(out, { recursive: true, encoding: 'utf8' }).join(', ')}`);
  await execa('pg_restore', ['-Fd', '-j', '2', '--no-owner', '--clean', '--if-exists', '--exit-on-error', '-d', targetUrl, toc], { env });
}

/** The pg_dump that a process started (the leader, not its -j workers), once it runs the real binary. */
export function pgDumpBelow(root: number): ProcessInfo | undefined {
  const procs = descendants(root);
  const dumps = procs.filter((p) => p.comm === 'pg_dump');
  return dumps.find((p) => !dumps.some((q) => q.pid === p.ppid) && path.basename(p.exe) === 'pg_dump');
}

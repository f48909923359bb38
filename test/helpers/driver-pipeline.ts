// A backup pipeline for any driver and repository, its secrets from the environment: for tests through the CLI.
import path from 'node:path';
import { repoRoot } from './cli.js';
import { TEST_STEPS_PLUGIN } from './backup-run.js';

/** The plugin with the `run-tmpdirs` step. */
export const LIST_FILES_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'list-files.ts');

/** What varies between the pipelines. */
export interface DriverCase {
  driver: 'postgres' | 'mysql' | 'sqlite';
  url: string;
  /** The database's password, given through the `db_password` secret (env DB_PASSWORD). */
  password?: string;
  /** Where backups go: file://./backups or s3://bucket/backups. */
  repo: string;
  /** Database options. */
  options?: Record<string, unknown>;
  /** Steps (flow mappings) that run after the restore-test and before the rowcount-check. */
  afterRestore?: Record<string, unknown>[];
}

/**
 * snapshot → dump → throttle → zstd → OpenPGP → upload → restore-test (target: scratch, the scratch database these tests follow; the throwaway default has its own tests) → rowcount-check of one database
 * `app`, the passphrase from BACKUP_PASSPHRASE (a sqlite database is seeded first).
 */
export function driverPipeline(c: DriverCase): string {
  const db = {
    driver: c.driver,
    url: c.url,
    ...(c.password !== undefined && { password: '{{ secrets.db_password }}' }),
    ...(c.options && { options: c.options }),
  };
  const seed = c.driver === 'sqlite' ? '  - { id: seed, uses: sqlite-seed, with: { database: app, rows: 20000 } }\n' : '';
  const after = (c.afterRestore ?? []).map((s) => `  - ${JSON.stringify({ needs: ['restore_test'], ...s })}\n`).join('');
  const needs = c.afterRestore?.length ? `needs: ${JSON.stringify(c.afterRestore.map((s) => s.id))}, ` : '';
  return `version: 1
name: secrets
timeout: 3m
plugins: ${JSON.stringify([TEST_STEPS_PLUGIN, ...(after ? [LIST_FILES_PLUGIN] : [])])}
secrets:
  passphrase: { env: BACKUP_PASSPHRASE }
${c.password !== undefined ? '  db_password: { env: DB_PASSWORD }\n' : ''}databases:
  app: ${JSON.stringify(db)}
steps:
${seed}  - { id: snapshot, uses: snapshot, ${seed ? 'needs: seed, ' : ''}with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: throttle, uses: throttle, input: dump, with: { delay_ms: 5 } }
  - { id: compress, uses: compress, input: throttle, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "${c.repo}/{{ run.id }}/app.dump.zst.pgp" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, target: scratch, passphrase: "{{ secrets.passphrase }}" } }
${after}  - { id: rowcount_check, uses: rowcount-check, ${needs}with: { restored: restore_test, snapshot: snapshot } }
`;
}

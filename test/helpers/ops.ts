// Fixtures for the operations tests (metrics, status, audit): small SQLite pipelines, run records, parsed metrics.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { repoRoot } from './cli.js';

/** The test plugin with the `sleep` and `fail` steps. */
export const OPS_STEPS_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'ops-steps.ts');

/** A line of the `sleep` step's log: `start`, `end` or `cancelled`, the run id and the time. */
export interface SleepLogLine {
  what: string;
  run: string;
  at: number;
}

/**
 * The lines of a `sleep` step's log (none when it does not exist yet). Only whole lines: the test reads while runs
 * append, and a read can see a line still being written.
 */
export function sleepLog(file: string): SleepLogLine[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [what = '', run = '', at = ''] = line.split(' ');
      return { what, run, at: Date.parse(at) };
    });
}

/** A schedule due once a year, at `at` to the second: six fields with seconds first, meant for `timezone: UTC`. */
export function onceAt(at: Date): string {
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} *`;
}

/** The passphrase of the test backups (the `TEST_PASSPHRASE` secret). */
export const OPS_PASSPHRASE = 'dbflow-ops-test-passphrase';

/** A SQLite backup of `./<name>.sqlite3` into `file://./backups/<name>`, restore-tested unless `verify` is false; `extra` adds top-level keys (e.g. `rpo: 1h`). */
export function sqlitePipeline(name: string, extra = '', verify = true): string {
  const checks = `  - id: restore_test
    uses: restore-test
    with: { from: upload, passphrase: "{{ secrets.passphrase }}" }
  - id: rowcount_check
    uses: rowcount-check
    with: { restored: restore_test, snapshot: snapshot }
`;
  return `version: 1
name: ${name}
${extra}
secrets:
  passphrase: { env: TEST_PASSPHRASE }
vars:
  repo: file://./backups/{{ pipeline.name }}
databases:
  demo: { driver: sqlite, url: "sqlite:./${name}.sqlite3" }
steps:
  - id: seed
    uses: sqlite-seed
    with: { database: demo, rows: 300 }
  - id: snapshot
    uses: snapshot
    needs: seed
    with: { databases: [demo] }
  - id: dump
    uses: dump
    with: { database: demo, snapshot: snapshot }
  - id: compress
    uses: compress
    input: dump
    with: { algorithm: zstd, level: 3 }
  - id: encrypt
    uses: encrypt
    input: compress
    with: { passphrase: "{{ secrets.passphrase }}" }
  - id: upload
    uses: upload
    input: encrypt
    with: { to: "{{ vars.repo }}/{{ run.id }}/demo.sqlite3.zst.pgp" }
${verify ? checks : ''}`;
}

/** A pipeline named `name` whose one step fails with `message`; `extra` adds top-level keys. */
export function failingPipeline(name: string, message: string, step = 'boom', extra = ''): string {
  return `version: 1
name: ${name}
${extra}
plugins: [${JSON.stringify(OPS_STEPS_PLUGIN)}]
steps:
  - id: ${step}
    uses: fail
    with: { message: ${JSON.stringify(message)} }
`;
}

/** What a run record's result.json holds (the parts these tests read). */
export interface ResultJson {
  run_id: string;
  pipeline: string;
  status: string;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  steps: Record<string, { status: string; error?: string }>;
  summary: {
    artifacts: { database: string; url: string; bytes: number; raw_bytes?: number }[];
    verifications: { database: string; check: string; ok: boolean }[];
    manifest?: string;
  };
}

/** Every readable result.json of the run records under `stateDir`, by run id. */
export function resultsIn(stateDir: string): ResultJson[] {
  const root = path.join(stateDir, 'runs');
  return readdirSync(root)
    .sort()
    .flatMap((id) => {
      try {
        return [JSON.parse(readFileSync(path.join(root, id, 'result.json'), 'utf8')) as ResultJson];
      } catch {
        return []; // still running, or cut short
      }
    });
}

/** A parsed exposition: the value of `name` with exactly `labels`, or undefined when there is no such sample. */
export function sampleOf(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => {
    const l = m.labels ?? {};
    return Object.keys(l).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => l[k] === v);
  });
  return sample ? Number(sample.value) : undefined;
}

/** The Prometheus text format parsed into metric families. */
export function parseMetrics(text: string): ParsedFamily[] {
  return parsePrometheusTextFormat(text);
}

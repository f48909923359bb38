// One timed run of each side of the throughput comparison: the dbflow CLI and the shell pipeline.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Watcher } from './cpu-watch.js';
import { BenchError, CLI, fileSize, ROOT, run, runOk, type Timed } from './util.js';

/** The gpg command of the shell side. gpg's default would add a ZIP layer over the zstd output;
 *  dbflow's encrypt step writes no compression packet, so the fair baseline turns it off. */
export const GPG_ENCRYPT =
  'gpg --batch --yes --symmetric --cipher-algo AES256 --compress-algo none --pinentry-mode loopback --passphrase-file "$PASS" -o "$OUT"';

/** The shell pipeline; paths come in as environment variables; phase times go to stderr. */
export const SHELL_SCRIPT = [
  'set -o pipefail',
  't0=$(date +%s%N)',
  `sqlite3 "$SRC" ".backup '$TMP'" || { rm -f "$TMP"; exit 1; }`,
  't1=$(date +%s%N)',
  `zstd -3 -T0 -q -c "$TMP" | ${GPG_ENCRYPT}; rc=$?`,
  't2=$(date +%s%N)',
  'rm -f "$TMP"',
  'echo "bench-phases $t0 $t1 $t2" >&2',
  'exit $rc',
].join('\n');

/** The shell's restore: decrypt and decompress, then count the rows of each table. */
export const SHELL_RESTORE = [
  'set -o pipefail',
  'gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$PASS" -d "$OUT" | zstd -d -q -f -o "$RESTORED" || exit 1',
  `sqlite3 "$RESTORED" 'PRAGMA integrity_check; SELECT count(*) FROM customers; SELECT count(*) FROM orders; SELECT count(*) FROM order_items;' >/dev/null; rc=$?`,
  'rm -f "$RESTORED"',
  'exit $rc',
].join('\n');

export interface ShellRun extends Timed {
  backupMs: number;
  streamMs: number;
  outBytes: number;
}

export async function shellRun(env: { SRC: string; TMP: string; OUT: string; PASS: string; GNUPGHOME: string }): Promise<ShellRun> {
  const r = await runOk('bash', ['-c', SHELL_SCRIPT], { env: { ...process.env, ...env }, time: true });
  const m = /bench-phases (\d+) (\d+) (\d+)/.exec(r.stderr);
  if (!m) throw new BenchError(`the shell pipeline printed no phase times: ${r.stderr}`);
  const [t0, t1, t2] = [m[1], m[2], m[3]].map((x) => Number(BigInt(x!) / 1000n) / 1000);
  const outBytes = fileSize(env.OUT);
  if (outBytes === 0) throw new BenchError('the shell pipeline wrote no output');
  return { ...r, backupMs: t1! - t0!, streamMs: t2! - t1!, outBytes };
}

export async function shellRestore(env: { OUT: string; RESTORED: string; PASS: string; GNUPGHOME: string }): Promise<Timed> {
  return runOk('bash', ['-c', SHELL_RESTORE], { env: { ...process.env, ...env }, time: true });
}

/**
 * The bench pipeline: the quickstart chain without seed (and without restore-test unless asked).
 * The upload URL is absolute (a relative one would mean the pipeline file's folder).
 */
export function benchYaml(o: { db: string; passFile: string; outDir: string; restore: boolean }): string {
  const lines = [
    'version: 1',
    `name: ${o.restore ? 'bench_restore' : 'bench_chain'}`,
    'secrets:',
    `  passphrase: { file: ${JSON.stringify(o.passFile)} }`,
    'databases:',
    `  src: { driver: sqlite, url: ${JSON.stringify(`sqlite:${o.db}`)} }`,
    'steps:',
    '  - { id: snapshot, uses: snapshot, with: { databases: [src] } }',
    '  - { id: dump, uses: dump, with: { database: src, snapshot: snapshot } }',
    '  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3, threads: 0 } }',
    '  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }',
    `  - { id: upload, uses: upload, input: encrypt, with: { to: ${JSON.stringify(`file://${o.outDir}/{{ run.id }}/src.sqlite3.zst.pgp`)} } }`,
  ];
  if (o.restore) {
    lines.push(
      '  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }',
      '  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }',
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface DbflowRun extends Timed {
  /** Step durations from the run's step:end events. */
  stepMs: Record<string, number>;
  /** Bytes through each stream step (step:end `bytes`). */
  stepBytes: Record<string, number>;
  /** runPipeline's own duration (run:end). */
  engineMs: number;
  outBytes: number;
  /** Where the artifact went (removed after the run unless `keep`). */
  runDir: string;
  /** The stored artifact's file, when kept. */
  artifact?: string;
  /** When the run started (its run:start event), epoch ms. */
  runStartAt?: number;
  /**
   * When the dump's first bytes flowed, epoch ms: the first step:progress of the step `dump` when its bytes pass
   * through dbflow, else (its program's stdout handed to zstd) the first ~100 ms sample that saw the dump program
   * (pg_dump, mariadb-dump) having written 64 KiB.
   */
  firstDumpByteAt?: number;
  /** How `firstDumpByteAt` was seen. */
  firstDumpByteBy?: 'event' | 'sample';
}

/** The programs whose output is the dump. */
export const DUMP_PROGRAMS = new Set(['pg_dump', 'mariadb-dump', 'mysqldump']);

interface Ev {
  type: string;
  time?: string;
  id?: string;
  duration_ms?: number;
  bytes?: number;
  status?: string;
  error?: string;
  run_id?: string;
  summary?: { artifacts?: { bytes: number; url: string }[] };
}

/**
 * Runs the built CLI on a pipeline; `keep` leaves the stored artifact (a file:// URL) for the caller to
 * remove; `watch` samples its processes.
 */
export async function dbflowRun(
  pipelineFile: string,
  stateDir: string,
  outDir: string,
  opts: { keep?: boolean; watch?: () => Watcher } = {},
): Promise<DbflowRun> {
  const r = await run(process.execPath, [CLI, 'run', pipelineFile, '--json', '--state-dir', stateDir], {
    time: true,
    ...(opts.watch && { watch: opts.watch }),
  });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Ev);
  const end = events.find((e) => e.type === 'run:end');
  if (r.code !== 0 || end?.status !== 'success') {
    const failed = events.filter((e) => e.type === 'step:end' && e.status === 'failed').map((e) => `${e.id}: ${e.error}`);
    throw new BenchError(
      `dbflow run ${path.basename(pipelineFile)} exited ${r.code} (${end?.status ?? 'no run:end'}): ${end?.error ?? ''}\n${failed.join('\n')}\n${r.stderr.slice(-2000)}`,
    );
  }
  const stepMs: Record<string, number> = {};
  const stepBytes: Record<string, number> = {};
  for (const e of events) {
    if (e.type !== 'step:end' || !e.id) continue;
    stepMs[e.id] = e.duration_ms ?? 0;
    if (e.bytes !== undefined) stepBytes[e.id] = e.bytes;
  }
  // The engine reports a stream step's first bytes at once (then at most every 250 ms).
  const at = (e: Ev | undefined): number | undefined => (e?.time ? Date.parse(e.time) : undefined);
  const runStartAt = at(events.find((e) => e.type === 'run:start'));
  const byEvent = at(events.find((e) => e.type === 'step:progress' && e.id === 'dump' && (e.bytes ?? 0) > 0));
  const bySample = r.tree?.procs.find((p) => DUMP_PROGRAMS.has(p.comm) && p.firstOutputAt !== undefined)?.firstOutputAt;
  const firstDumpByteAt = byEvent ?? bySample;
  const stored = end.summary?.artifacts?.[0];
  const outBytes = stored?.bytes ?? 0;
  const file = stored?.url.startsWith('file://') ? path.resolve(ROOT, decodeURIComponent(stored.url.slice('file://'.length))) : undefined;
  // The backup's folder (artifact and manifest): where the run stored it, else where the pipeline meant it to go.
  const runDir = file ? path.dirname(file) : path.join(outDir, end.run_id ?? '');
  const artifact = opts.keep ? file : undefined;
  if (!artifact) rmSync(runDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
  if (!outBytes) throw new BenchError('the dbflow run stored no artifact');
  return {
    ...r,
    stepMs,
    stepBytes,
    engineMs: end.duration_ms ?? 0,
    outBytes,
    runDir,
    ...(artifact && { artifact }),
    ...(runStartAt !== undefined && { runStartAt }),
    ...(firstDumpByteAt !== undefined && { firstDumpByteAt, firstDumpByteBy: byEvent !== undefined ? 'event' : 'sample' }),
  };
}

export function writePipeline(file: string, yaml: string): string {
  writeFileSync(file, yaml);
  return file;
}

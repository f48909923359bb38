// What the database sections share: dbflow's chain against a shell pipeline in alternating rounds,
// and the restore test against the stock restore, every run sampled (CPU per process, the server's).
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { dbflowRun, type DbflowRun } from './chain-runs.js';
import { checkArtifact, type Decoded } from './db-checks.js';
import { watchRun, type Watcher } from './cpu-watch.js';
import type { ServerCpu } from './server-cpu.js';
import { BenchError, CLI, MiB, run, runOk, type Timed } from './util.js';

export const RSS_LIMIT_MIB = 200;
const CHAIN = ['dump', 'compress', 'encrypt', 'upload'];

/** A dbflow run, with what the bench read from its manifest. */
export type ChainRun = DbflowRun & {
  /** The commit barrier its snapshot recorded, where the driver has one. */
  barrierMs?: number;
  /** The manifest's status (`verified` once its restore-test passed). */
  status?: string;
  /** Row counts per table (the table's name, without its schema) taken inside the snapshot. */
  rows?: Record<string, number>;
};
/** A run of the shell pipeline. */
export type ShellRun = Timed & { outBytes: number };
/** A sampler per run, made just before the run starts. */
export type WatchFactory = () => Watcher;

export const chainMs = (r: DbflowRun): number => Math.max(...CHAIN.map((s) => r.stepMs[s] ?? 0));
export const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
export const message = (err: unknown): string =>
  err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
export const strip = (r: object): Record<string, unknown> => ({ ...r, stdout: undefined, stderr: undefined });
/** Client CPU of a run: the wrapper's rusage, which includes every descendant that was waited for. */
export const clientCpuS = (t: Timed): number => t.userS + t.sysS;

/** One line about a run, for the log. */
export function describe(d: Timed, extra = ''): string {
  const server = d.tree?.server ? ` + server ${d.tree.server.totalS.toFixed(1)} s` : '';
  return `${sec(d.wallMs)}${extra}, CPU ${clientCpuS(d).toFixed(1)} s${server}`;
}

/** The dbflow side of `describe`: the snapshot and the chain, node's peak RSS, the commit barrier. */
export function describeDbflow(d: ChainRun): string {
  const node = d.tree?.procs.find((p) => p.depth === 1);
  return describe(
    d,
    ` (snapshot ${sec(d.stepMs.snapshot ?? 0)}, dump chain ${sec(chainMs(d))})${node ? `, node peak RSS ${(node.peakRssKiB / 1024).toFixed(0)} MiB` : ''}${d.barrierMs !== undefined ? `, commits blocked ${d.barrierMs.toFixed(1)} ms` : ''}`,
  );
}

/** gpg starts its agent and creates its keybox on first use: not part of a backup. */
export async function warmGpg(passFile: string, gnupgHome: string, dir: string): Promise<void> {
  await runOk(
    'gpg',
    ['--batch', '--yes', '--symmetric', '--pinentry-mode', 'loopback', '--passphrase-file', passFile, '-o', path.join(dir, 'warm.gpg')],
    {
      env: { ...process.env, GNUPGHOME: gnupgHome },
    },
  );
}

/**
 * Runs of dbflow that stop at the first failure (recorded in `broken`), once `dbflow validate`
 * accepts `chain`: without the driver (or with a broken one) the shell figures are still worth having.
 */
export async function dbflowRunner<R>(
  chain: string,
  driver: string,
  broken: string[],
  log: (s: string) => void,
): Promise<{ attempt: (what: string, fn: () => Promise<R>) => Promise<R | undefined>; ok: () => boolean }> {
  let ok = true;
  const v = await run(process.execPath, [CLI, 'validate', chain]);
  if (v.code !== 0) {
    ok = false;
    broken.push(
      `dbflow cannot run the ${driver} pipeline (dbflow validate exited ${v.code}):\n${`${v.stderr}\n${v.stdout}`.trim().slice(-1500)}`,
    );
    log(`  dbflow validate failed: dbflow runs skipped (${v.stderr.trim().split('\n')[0] ?? ''})`);
  }
  const attempt = async (what: string, fn: () => Promise<R>): Promise<R | undefined> => {
    if (!ok) return undefined;
    try {
      return await fn();
    } catch (err) {
      ok = false;
      broken.push(`dbflow ${what}: ${message(err)}`);
      log(`  dbflow ${what} FAILED: ${message(err).split('\n')[0]}`);
      return undefined;
    }
  };
  return { attempt, ok: () => ok };
}

interface StoredManifest {
  status?: string;
  databases?: Record<string, { position?: { barrier_ms?: unknown }; tables?: Record<string, { rows?: number }> }>;
}

/** Reads the manifest of a kept run (`database`'s row counts and barrier), then removes the run's folder unless `keep`. */
export function withManifest(r: DbflowRun, database: string, keep = false): ChainRun {
  try {
    const m = JSON.parse(readFileSync(path.join(r.runDir, 'manifest.json'), 'utf8')) as StoredManifest;
    const db = m.databases?.[database];
    const ms = db?.position?.barrier_ms;
    const rows = Object.fromEntries(Object.entries(db?.tables ?? {}).map(([k, v]) => [k.slice(k.lastIndexOf('.') + 1), v.rows ?? -1]));
    return {
      ...r,
      ...(!keep && { artifact: undefined }),
      ...(m.status !== undefined && { status: m.status }),
      rows,
      ...(typeof ms === 'number' && { barrierMs: ms }),
    };
  } catch (err) {
    throw new BenchError(`the manifest of dbflow run ${path.basename(r.runDir)} cannot be read: ${message(err)}`);
  } finally {
    if (!keep) rmSync(r.runDir, { recursive: true, force: true });
  }
}

/** Tables whose counts differ from the source's, as text ('' when they all match). */
export function rowsDiffer(got: Record<string, number> | undefined, want: Record<string, number>): string {
  return Object.keys(want)
    .filter((t) => got?.[t] !== want[t])
    .map((t) => `${t} (${got?.[t] ?? 'missing'}, the source has ${want[t]})`)
    .join(', ');
}

/** The timed runs of a chain comparison. */
export interface ChainRounds<S extends ShellRun> {
  shells: S[];
  /** dbflow with its default options (checksums on). */
  dbflows: ChainRun[];
  /** dbflow with the database's `options.checksums: false`. */
  noSums: ChainRun[];
}

/**
 * `rounds` rounds of dbflow, shell, dbflow with checksums off, shell (so dbflow and the shell strictly
 * alternate and every dbflow run sits between two shell runs), after one untimed shell run that brings
 * the database into the caches. Every run is sampled (`watch`).
 */
export async function chainRounds<S extends ShellRun>(o: {
  rounds: number;
  server: ServerCpu | undefined;
  shell: (watch: WatchFactory) => Promise<S>;
  /** Round `i` (from 0) of dbflow with its default options. */
  dbflow: (i: number, watch: WatchFactory) => Promise<ChainRun | undefined>;
  noSums: (i: number, watch: WatchFactory) => Promise<ChainRun | undefined>;
  log: (s: string) => void;
}): Promise<ChainRounds<S>> {
  const { log } = o;
  const watch: WatchFactory = () => watchRun(o.server);
  const shells: S[] = [];
  const dbflows: ChainRun[] = [];
  const noSums: ChainRun[] = [];
  const w = await o.shell(watch);
  log(`  warm-up shell run (not counted): ${describe(w)}`);
  const shell = async (i: number): Promise<void> => {
    const s = await o.shell(watch);
    shells.push(s);
    log(`  round ${i + 1} shell:  ${describe(s)}, peak RSS ${(s.maxRssKiB / 1024).toFixed(0)} MiB, ${mib(s.outBytes)}`);
  };
  for (let i = 0; i < o.rounds; i++) {
    const d = await o.dbflow(i, watch);
    if (d) dbflows.push(d);
    if (d) log(`  round ${i + 1} dbflow: ${describeDbflow(d)}, ${mib(d.outBytes)}`);
    await shell(i);
    const n = await o.noSums(i, watch);
    if (n) noSums.push(n);
    if (n) log(`  round ${i + 1} dbflow checksums: false: ${describeDbflow(n)}`);
    await shell(i);
  }
  return { shells, dbflows, noSums };
}

/**
 * `rounds` rounds of dbflow's chain with restore-test, then the stock restore of the artifact that run
 * stored (of `fallback`, the shell's, when dbflow could not run). The stored backups are removed but
 * the last one (the caller's to check and remove).
 */
export async function restoreRounds<R extends Timed>(o: {
  rounds: number;
  dbflow: (i: number) => Promise<ChainRun | undefined>;
  shell: (artifact: string) => Promise<R>;
  describeShell: (r: R) => string;
  fallback: string;
  log: (s: string) => void;
}): Promise<{ dbflows: ChainRun[]; shells: R[] }> {
  const dbflows: ChainRun[] = [];
  const shells: R[] = [];
  for (let i = 0; i < o.rounds; i++) {
    const d = await o.dbflow(i);
    if (d) {
      dbflows.push(d);
      o.log(
        `  round ${i + 1} dbflow restore_test ${sec(d.stepMs.restore_test ?? 0)}, rowcount_check ${(d.stepMs.rowcount_check ?? 0).toFixed(0)} ms (whole run ${sec(d.wallMs)}), manifest ${d.status ?? '?'}`,
      );
    }
    const s = await o.shell(d?.artifact ?? o.fallback);
    shells.push(s);
    o.log(`  round ${i + 1} shell restore of ${d ? "dbflow's" : "the shell's"} artifact: ${o.describeShell(s)}`);
    if (d && i < o.rounds - 1) rmSync(d.runDir, { recursive: true, force: true });
  }
  return { dbflows, shells };
}

/**
 * A chain run of `file` through `attempt` (from `dbflowRunner`): its manifest's row counts checked
 * against the source's, round 1's artifact decoded with stock tools; problems go to `o.broken`.
 */
export function checkedChainRun(o: {
  attempt: (what: string, fn: () => Promise<ChainRun>) => Promise<ChainRun | undefined>;
  state: string;
  outDir: string;
  sourceRows: Record<string, number>;
  passFile: string;
  gnupgHome: string;
  looksRight: (d: Decoded) => string | undefined;
  broken: string[];
  log: (s: string) => void;
}): (file: string, what: string, i: number, watch: WatchFactory) => Promise<ChainRun | undefined> {
  return (file, what, i, watch) =>
    o.attempt(`${what}, round ${i + 1}`, async () => {
      const d = withManifest(await dbflowRun(file, o.state, o.outDir, { keep: true, watch }), 'bench', true);
      try {
        const wrong = rowsDiffer(d.rows, o.sourceRows);
        if (wrong) o.broken.push(`dbflow ${what}: its snapshot's row counts are not the source's: ${wrong}`);
        if (i === 0 && d.artifact) {
          const p = await checkArtifact({
            side: `dbflow (${what})`,
            artifact: d.artifact,
            passFile: o.passFile,
            gnupgHome: o.gnupgHome,
            looksRight: o.looksRight,
            dumpEdgeBytes: d.stepBytes.dump ?? -1,
            log: o.log,
          });
          if (p) o.broken.push(p);
        }
        return { ...d, artifact: undefined };
      } finally {
        rmSync(d.runDir, { recursive: true, force: true });
      }
    });
}

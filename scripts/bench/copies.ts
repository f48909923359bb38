// 13. Several copies: the quickstart chain stored once, and written to two file destinations at once (one read of the
// database, one stream teed to both), against the shell doing the same with tee.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { benchYaml, dbflowRun, GPG_ENCRYPT, writePipeline, type DbflowRun } from './chain-runs.js';
import { warmGpg } from './db-chain.js';
import { bounded, figure, type Figure } from './report.js';
import { sourceDatabase } from './seed.js';
import { BenchError, DATA, fileSize, MiB, runOk, scratchDir, type Timed } from './util.js';

export interface CopiesOptions {
  sizeMiB: number;
  passFile: string;
  gnupgHome: string;
  log: (s: string) => void;
}

/** The shell side: one copy (`-o "$A"`), or two through tee (`| tee >(cat > "$A") > "$B"`), from the same .backup. */
export const COPIES_SHELL = [
  'set -o pipefail',
  `sqlite3 "$SRC" ".backup '$TMP'" || { rm -f "$TMP"; exit 1; }`,
  'if [ -z "$B" ]; then',
  `  zstd -3 -T0 -q -c "$TMP" | ${GPG_ENCRYPT.replace('-o "$OUT"', '-o "$A"')}; rc=$?`,
  'else',
  `  zstd -3 -T0 -q -c "$TMP" | ${GPG_ENCRYPT.replace('-o "$OUT"', '-o -')} | tee >(cat > "$A") > "$B"; rc=$?`,
  'fi',
  'rm -f "$TMP"',
  'exit $rc',
].join('\n');

const best = <T extends { wallMs: number }>(xs: T[]): T => xs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));

export async function copiesSection(o: CopiesOptions): Promise<{ figures: Figure[]; details: unknown }> {
  const { log } = o;
  const src = await sourceDatabase(o.sizeMiB, log);
  const srcMiB = src.bytes / MiB;
  const work = scratchDir('copies', DATA);
  const dirs = { a: path.join(work, 'a'), b: path.join(work, 'b') };
  const shellTmp = scratchDir('copies-shell');
  try {
    for (const d of Object.values(dirs)) mkdirSync(d);
    const pipeline = (copies: number): string => {
      const yaml = benchYaml({ db: src.file, passFile: o.passFile, outDir: dirs.a, restore: false });
      const one = JSON.stringify(`file://${dirs.a}/{{ run.id }}/src.sqlite3.zst.pgp`);
      const two = `[${one}, ${JSON.stringify(`file://${dirs.b}/{{ run.id }}/src.sqlite3.zst.pgp`)}]`;
      if (!yaml.includes(`to: ${one}`)) throw new BenchError('the bench pipeline has no upload to replace');
      return writePipeline(path.join(work, `copies-${copies}.yaml`), yaml.replace(`to: ${one}`, `to: ${copies === 1 ? one : two}`));
    };
    const files = { 1: pipeline(1), 2: pipeline(2) };
    const clear = (): void => {
      for (const d of Object.values(dirs)) {
        rmSync(d, { recursive: true, force: true });
        mkdirSync(d);
      }
    };
    const shell = async (copies: 1 | 2): Promise<Timed & { outBytes: number }> => {
      const env = {
        ...process.env,
        SRC: src.file,
        TMP: path.join(shellTmp, 'tmp.db'),
        PASS: o.passFile,
        GNUPGHOME: o.gnupgHome,
        A: path.join(dirs.a, 'shell.zst.gpg'),
        B: copies === 2 ? path.join(dirs.b, 'shell.zst.gpg') : '',
      };
      const r = await runOk('bash', ['-c', COPIES_SHELL], { env, time: true });
      const outBytes = fileSize(env.A);
      if (!outBytes || (copies === 2 && fileSize(env.B) !== outBytes)) throw new BenchError('the shell wrote no whole copies');
      clear();
      return { ...r, outBytes };
    };
    const dbflow = async (copies: 1 | 2): Promise<DbflowRun> => {
      const r = await dbflowRun(files[copies], path.join(work, 'state'), dirs.a);
      clear();
      return r;
    };
    await warmGpg(o.passFile, o.gnupgHome, shellTmp);
    const runs = { d1: [] as DbflowRun[], d2: [] as DbflowRun[], s1: [] as Timed[], s2: [] as Timed[] };
    const sec = (t: { wallMs: number }): string => `${(t.wallMs / 1000).toFixed(2)} s`;
    for (let i = 0; i < 2; i++) {
      runs.s1.push(await shell(1));
      runs.d1.push(await dbflow(1));
      runs.s2.push(await shell(2));
      runs.d2.push(await dbflow(2));
      log(
        `  #${i + 1}: dbflow 1 copy ${sec(runs.d1[i]!)}, 2 copies ${sec(runs.d2[i]!)} (peak RSS ${(runs.d2[i]!.maxRssKiB / 1024).toFixed(0)} MiB); shell 1 copy ${sec(runs.s1[i]!)}, 2 copies (tee) ${sec(runs.s2[i]!)}`,
      );
    }
    const [d1, d2, s1, s2] = [best(runs.d1), best(runs.d2), best(runs.s1), best(runs.s2)];
    const rss = (xs: Timed[]): number => Math.max(...xs.map((x) => x.maxRssKiB)) / 1024;
    const S = '13 copies';
    const s = (t: { wallMs: number }): string => `${(t.wallMs / 1000).toFixed(2)} s`;
    const figures: Figure[] = [
      figure(S, 'source database', srcMiB, 'MiB', { note: `artifact ${(d1.outBytes / MiB).toFixed(1)} MiB per copy` }),
      figure(S, 'dbflow, 1 copy (best of 2)', d1.wallMs / 1000, 's', {
        note: `${(srcMiB / (d1.wallMs / 1000)).toFixed(0)} MiB/s of database`,
      }),
      figure(S, 'dbflow, 2 file copies at once (best of 2)', d2.wallMs / 1000, 's', {
        note: `${(srcMiB / (d2.wallMs / 1000)).toFixed(0)} MiB/s of database`,
      }),
      bounded(
        S,
        'dbflow 2 copies / 1 copy wall time',
        d2.wallMs / d1.wallMs,
        '×',
        1.5,
        false,
        'a second read (dump, compress, encrypt again) would be ~2×; a copy costs its write and its fsync (tee does none)',
      ),
      figure(S, 'shell, 1 copy (best of 2)', s1.wallMs / 1000, 's', { note: 'sqlite3 .backup; zstd | gpg -o a' }),
      figure(S, 'shell, 2 copies with tee (best of 2)', s2.wallMs / 1000, 's', { note: '… | gpg -o - | tee >(cat > a) > b' }),
      figure(S, 'shell 2 copies / 1 copy wall time', s2.wallMs / s1.wallMs, '×'),
      bounded(
        S,
        'dbflow/shell wall time, 2 copies',
        d2.wallMs / s2.wallMs,
        '×',
        1.2,
        true,
        `${s(d2)} vs ${s(s2)}; with 1 copy ${(d1.wallMs / s1.wallMs).toFixed(2)}× (the chain itself: section 3)`,
      ),
      bounded(S, 'dbflow peak RSS, 2 copies (max of 2 runs)', rss(runs.d2), 'MiB', 200, true, `1 copy: ${rss(runs.d1).toFixed(0)} MiB`),
    ];
    const walls = (xs: Timed[]): number[] => xs.map((x) => Math.round(x.wallMs));
    return {
      figures,
      details: {
        sourceMiB: srcMiB,
        wallMs: { dbflow1: walls(runs.d1), dbflow2: walls(runs.d2), shell1: walls(runs.s1), shell2: walls(runs.s2) },
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(shellTmp, { recursive: true, force: true });
  }
}

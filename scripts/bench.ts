// `npm run bench`: dbflow's performance figures, measured against the equivalent shell pipeline on
// the same machine in the same run. Prints a table (figure, value, target, PASS/FAIL) and writes
// bench-data/results.json. Exit code 0 even when a target is missed (it is a report); non-zero only
// when the benchmark itself breaks.
//
//   BENCH_SIZE_MB=500   size of the SQLite source database in MiB (default 500; 50 with BENCH_QUICK)
//   BENCH_QUICK=1       a small smoke run
//   BENCH_RSS_FLAT=1    also run dbflow on a database of twice the size, to show that RSS stays flat
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHELL_SCRIPT } from './bench/chain-runs.js';
import { engineOverhead } from './bench/engine-overhead.js';
import { renderTable, writeResults, type Figure } from './bench/report.js';
import { throughput } from './bench/throughput.js';
import { BenchError, DATA, ensureBuild, scratchDir } from './bench/util.js';
import { validateTime } from './bench/validate-time.js';

const quick = process.env.BENCH_QUICK === '1';
const sizeMiB = Number(process.env.BENCH_SIZE_MB ?? (quick ? 50 : 500));
const rssFlat = process.env.BENCH_RSS_FLAT === '1';
if (!Number.isInteger(sizeMiB) || sizeMiB < 1) {
  console.error(`bench: BENCH_SIZE_MB must be a whole number of MiB ≥ 1, not "${process.env.BENCH_SIZE_MB}"`);
  process.exit(2);
}
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const tool = (cmd: string, args: string[]): string =>
  (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0]?.trim() || 'missing';

// Secrets and gpg's home for the shell side: private, and removed at the end.
mkdirSync(DATA, { recursive: true });
const passFile = path.join(DATA, `bench-${process.pid}.passphrase`);
writeFileSync(passFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
const gnupgHome = scratchDir('gnupg', os.tmpdir());
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  spawnSync('gpgconf', ['--homedir', gnupgHome, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  rmSync(gnupgHome, { recursive: true, force: true });
  rmSync(passFile, { force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`bench: ${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? '',
  memGiB: Math.round(os.totalmem() / 2 ** 30),
  loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  tools: {
    zstd: `zstd ${/v[\d.]+/.exec(tool('zstd', ['--version']))?.[0] ?? '?'}`,
    gpg: tool('gpg', ['--version']),
    sqlite3: tool('sqlite3', ['--version']).split(' ')[0] ?? '',
  },
};
log(
  `dbflow bench: ${quick ? 'QUICK, ' : ''}${sizeMiB} MiB database${rssFlat ? ', RSS flatness at 2×' : ''}; ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}`,
);
const busy = (): string | undefined => {
  const load = os.loadavg()[0] ?? 0;
  return load > machine.cpus * 0.5
    ? `load average ${load.toFixed(1)} on ${machine.cpus} CPUs: other work is running, so the figures are noisy`
    : undefined;
};
const busyAtStart = busy();
if (busyAtStart) log(`bench: WARNING: ${busyAtStart}`);

const figures: Figure[] = [];
const details: Record<string, unknown> = {};
const broken: string[] = [];
const started = performance.now();
try {
  ensureBuild(log);
  const sections: [string, () => Promise<{ figures: Figure[]; details: unknown }>][] = [
    ['1 engine overhead (1,000-step no-op DAG)', () => engineOverhead(log)],
    ['2 validate wall time (200-step pipeline)', () => validateTime(passFile, log)],
    [`3 quickstart chain throughput (${sizeMiB} MiB SQLite)`, () => throughput({ sizeMiB, passFile, gnupgHome, rssFlat, log })],
  ];
  for (const [name, fn] of sections) {
    log(`\n${name}`);
    const t0 = performance.now();
    try {
      const r = await fn();
      figures.push(...r.figures);
      details[name] = r.details;
      log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      // One broken section does not hide the figures of the others.
      const message = err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
      broken.push(`${name}: ${message}`);
      log(`  BROKEN: ${message}`);
    }
  }
} catch (err) {
  broken.push(err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  log(`bench: ${broken.at(-1)}`);
} finally {
  cleanup();
}

const totalS = (performance.now() - started) / 1000;
console.log(
  `\ndbflow bench — ${machine.date}, ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, ${machine.tools.zstd}, ${machine.tools.gpg}\n`,
);
console.log(renderTable(figures));
console.log('\nshell side (paths in $SRC $TMP $OUT $PASS; $TMP in os.tmpdir(), where dbflow stages its snapshot too):');
console.log(SHELL_SCRIPT.replace(/^/gm, '  '));
console.log("  (gpg's default would add a ZIP layer over the zstd output; dbflow's encrypt writes none, hence --compress-algo none.)");
const busyAtEnd = busy();
if (busyAtStart || busyAtEnd)
  console.log(
    `\nWARNING: ${busyAtStart ?? busyAtEnd} (1-min load average at start ${machine.loadAvgAtStart[0]}, at end ${os.loadavg()[0]?.toFixed(2)}).`,
  );
const missed = figures.filter((f) => f.pass === false).length;
const checked = figures.filter((f) => f.pass !== undefined).length;
console.log(`\n${checked - missed}/${checked} targets met; bench took ${totalS.toFixed(0)} s.`);
const file = writeResults({ machine, options: { quick, sizeMiB, rssFlat }, totalS, figures, broken, details });
console.log(`figures written to ${path.relative(process.cwd(), file)}`);
if (broken.length) {
  console.error(`\nbench: BROKEN — ${broken.length} section(s) could not be measured:\n${broken.join('\n')}`);
  process.exitCode = 1;
}

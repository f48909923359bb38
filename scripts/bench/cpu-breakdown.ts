// (h) Where the CPU goes: seconds per component for the shell, dbflow, and dbflow with checksums off,
// so that a regression shows in the component that caused it.
import { cpuOf } from './cpu-watch.js';
import { clientCpuS, type ChainRounds, type ShellRun } from './db-chain.js';
import { nodeOf } from './db-figures.js';
import type { Table } from './report.js';
import { median, type Timed } from './util.js';

/** The named client programs besides node; the rest of the tree (bash, GNU time …) is "other". */
const TOOLS = ['zstd', 'gpg'];

/** One run's CPU seconds per row of the table (undefined: not measured on that run). */
function parts(t: Timed, dumpTool: string): Record<string, number | undefined> {
  const tree = t.tree;
  const client = clientCpuS(t);
  const server = tree?.server?.totalS;
  if (!tree) return { total: undefined, client, server };
  const node = nodeOf(t)?.comm === 'node' ? nodeOf(t)!.cpuS : undefined;
  // A program that did not run in this tree is not a zero.
  const named = [dumpTool, ...TOOLS].map((c) => (tree.procs.some((p) => p.comm === c) ? cpuOf(tree, c) : undefined));
  const sampled = cpuOf(tree);
  return {
    total: server === undefined ? undefined : client + server,
    client,
    node,
    dump: named[0],
    zstd: named[1],
    gpg: named[2],
    other: sampled - (node ?? 0) - named.reduce((a: number, b) => a + (b ?? 0), 0),
    unattributed: client - sampled,
    server,
    sessions: tree.server?.sessionsS,
  };
}

/** The processes counted as "other", by name. */
function others(runs: readonly Timed[], dumpTool: string): string {
  const names = new Set<string>();
  for (const t of runs) for (const p of t.tree?.procs ?? []) if (p.depth !== 1 || p.comm !== 'node') names.add(p.comm);
  for (const n of [dumpTool, ...TOOLS]) names.delete(n);
  return [...names].sort().join(', ') || 'none';
}

/** The table: a row per component, a column per side; each cell the median over that side's runs. */
export function cpuBreakdown(S: string, r: ChainRounds<ShellRun>, dumpTool: string): Table {
  const cols = [
    { name: `shell (${r.shells.length} runs)`, runs: r.shells },
    { name: `dbflow (${r.dbflows.length})`, runs: r.dbflows },
    { name: `dbflow checksums off (${r.noSums.length})`, runs: r.noSums },
  ].filter((c) => c.runs.length);
  const rows: [string, string][] = [
    ['total', 'total: client + server'],
    ['client', 'client processes (rusage)'],
    ['node', '  dbflow node process'],
    ['dump', `  ${dumpTool}`],
    ['zstd', '  zstd'],
    ['gpg', '  gpg'],
    ['other', '  other client processes'],
    ['unattributed', '  unattributed (between samples)'],
    ['server', 'server, whole (/proc)'],
    ['sessions', '  its sessions on the bench database'],
  ];
  const per = cols.map((c) => c.runs.map((t) => parts(t, dumpTool)));
  const cell = (i: number, key: string): string => {
    const xs = per[i]!.map((p) => p[key]).filter((x): x is number => x !== undefined);
    if (!xs.length || xs.length !== per[i]!.length) return '–';
    const m = median(xs);
    return `${(Math.abs(m) < 0.005 ? 0 : m).toFixed(2)} s`;
  };
  return {
    title: `${S}: CPU seconds per component (user+sys; median per cell, so the rows need not add up)`,
    head: ['component', ...cols.map((c) => c.name)],
    rows: rows
      .filter(([key]) => cols.some((_, i) => cell(i, key) !== '–'))
      .map(([key, label]) => [label, ...cols.map((_, i) => cell(i, key))]),
    notes: [
      `  client: rusage of the process tree (exact); its rows: /proc/<pid>/stat sampled every ~100 ms, the last value per process;`,
      `  other client processes: ${cols.map((c) => `${c.name.split(' (')[0]}: ${others(c.runs, dumpTool)}`).join('; ')}`,
      `  server, whole: every process of the server, read before and after each run (other clients of the server count too);`,
      `  its sessions: the server's processes serving the bench database, sampled (PostgreSQL backends; MariaDB has threads, not shown)`,
    ],
  };
}

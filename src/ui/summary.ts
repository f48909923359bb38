// The closing summary of a run: artifacts, verified counts, manifest, and how to restore by hand.
import path from 'node:path';
import type { RunResult } from '../engine/engine.js';
import { shellWord } from '../plugins/shell-quote.js';
import { formatBytes, formatDuration } from './format.js';

const DECODE: Record<string, string> = { openpgp: 'gpg --decrypt', zstd: 'zstd -d', gzip: 'gzip -d' };

/** The stock command a driver gives for restoring a decoded dump (see DatabaseDriver.stockRestore). */
export type StockRestore = (artifact: RunResult['summary']['artifacts'][number], decoded: string) => string | undefined;

/** The stock command a storage gives for reading an object to stdout (see Storage.stockRead). */
export type StockRead = (url: string) => string | undefined;

/**
 * Stock commands that turn a stored artifact back into its raw dump, and into a database where its driver says how.
 * Every name from the artifact is one shell word (quoted where needed): the command is safe to paste.
 */
export function stockRestoreCommand(artifact: RunResult['summary']['artifacts'][number], restore?: StockRestore, read?: StockRead): string {
  const local = artifact.url.startsWith('file://');
  const file = shellWord(artifact.url.replace(/^file:\/\//, ''));
  const fetch = local ? undefined : (read?.(artifact.url) ?? `<download ${shellWord(artifact.url)}>`);
  const steps = [...artifact.layers].reverse().map((l) => DECODE[l.codec] ?? `<decode ${l.codec}>`);
  const [first, ...rest] = steps;
  const decoded = fetch ? [fetch, ...steps].join(' | ') : first ? [`${first} ${file}`, ...rest].join(' | ') : `cat ${file}`;
  const byDriver = restore?.(artifact, decoded);
  if (byDriver) return byDriver;
  const out = shellWord(`${artifact.database}.dump`);
  if (fetch || first) return `${decoded} > ${out}`;
  return `cp ${file} ${out}`;
}

/** Lines of the summary printed after a run. */
export function renderSummary(pipeline: string, result: RunResult, restore?: StockRestore, read?: StockRead): string {
  const mark = result.status === 'success' ? '✔' : result.status === 'cancelled' ? '■' : '✖';
  const lines = [`${mark} ${pipeline}: ${result.status} in ${formatDuration(result.durationMs)} (run ${result.runId})`];
  // A failed step's error was shown as it happened (once); the summary names the steps and where their logs are.
  // Where each failure started comes first; the members of its stream chain that failed with it follow.
  const failed = [...result.steps].filter(([, s]) => s.status === 'failed');
  const origins = failed.filter(([, s]) => !s.failedWith).map(([id]) => id);
  const carried = failed.filter(([, s]) => s.failedWith).map(([id]) => id);
  if (failed.length) {
    const names = origins.length
      ? `${origins.join(', ')}${carried.length ? ` (and in its stream chain: ${carried.join(', ')})` : ''}`
      : carried.join(', ');
    lines.push(`  failed    ${names}; errors above, each step's log in ${path.join(result.dir, 'logs')}`);
  } else if (result.error) lines.push(`  error     ${result.error}`);
  for (const a of result.summary.artifacts) {
    lines.push(`  artifact  ${a.database}  ${a.url}  ${formatBytes(a.bytes)}  sha256 ${a.sha256.slice(0, 16)}…`);
    for (const c of a.copies ?? []) lines.push(`  copy      ${a.database}  ${c}`);
  }
  for (const v of result.summary.verifications) {
    lines.push(`  ${v.ok ? 'verified' : 'FAILED  '}  ${v.database}  ${v.check}: ${v.detail ?? (v.ok ? 'ok' : 'failed')}`);
  }
  for (const m of result.summary.manifests ?? (result.summary.manifest ? [result.summary.manifest] : [])) lines.push(`  manifest  ${m}`);
  if (result.status === 'success' && result.summary.artifacts.length) {
    lines.push('  restore without dbflow:');
    // A server's roles first: the databases' owners and grants name them.
    const ordered = [...result.summary.artifacts].sort((a, b) => Number(b.globals === true) - Number(a.globals === true));
    for (const a of ordered) lines.push(`    ${stockRestoreCommand(a, restore, read)}`);
  }
  lines.push(`  run record ${result.dir}`);
  return lines.join('\n');
}

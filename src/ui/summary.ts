// The closing summary of a run: artifacts, verified counts, manifest, and how to restore by hand.
import type { RunResult } from '../engine/engine.js';
import { formatBytes, formatDuration } from './format.js';

const DECODE: Record<string, string> = { openpgp: 'gpg --decrypt', zstd: 'zstd -d', gzip: 'gzip -d' };

/** The stock command a driver gives for restoring a decoded dump (see DatabaseDriver.stockRestore). */
export type StockRestore = (artifact: RunResult['summary']['artifacts'][number], decoded: string) => string | undefined;

/** The stock command a storage gives for reading an object to stdout (see Storage.stockRead). */
export type StockRead = (url: string) => string | undefined;

/** Stock commands that turn a stored artifact back into its raw dump, and into a database where its driver says how. */
export function stockRestoreCommand(artifact: RunResult['summary']['artifacts'][number], restore?: StockRestore, read?: StockRead): string {
  const local = artifact.url.startsWith('file://');
  const file = artifact.url.replace(/^file:\/\//, '');
  const fetch = local ? undefined : (read?.(artifact.url) ?? `<download ${artifact.url}>`);
  const steps = [...artifact.layers].reverse().map((l) => DECODE[l.codec] ?? `<decode ${l.codec}>`);
  const [first, ...rest] = steps;
  const decoded = fetch
    ? [fetch, ...steps].join(' | ')
    : first
      ? [`${first} ${file}`, ...rest].join(' | ')
      : `cat ${file}`;
  const byDriver = restore?.(artifact, decoded);
  if (byDriver) return byDriver;
  if (fetch || first) return `${decoded} > ${artifact.database}.dump`;
  return `cp ${file} ${artifact.database}.dump`;
}

/** Lines of the summary printed after a run. */
export function renderSummary(pipeline: string, result: RunResult, restore?: StockRestore, read?: StockRead): string {
  const mark = result.status === 'success' ? '✔' : result.status === 'cancelled' ? '■' : '✖';
  const lines = [`${mark} ${pipeline}: ${result.status} in ${formatDuration(result.durationMs)} (run ${result.runId})`];
  if (result.error) lines.push(`  error     ${result.error}`);
  for (const a of result.summary.artifacts) {
    lines.push(`  artifact  ${a.database}  ${a.url}  ${formatBytes(a.bytes)}  sha256 ${a.sha256.slice(0, 16)}…`);
  }
  for (const v of result.summary.verifications) {
    lines.push(`  ${v.ok ? 'verified' : 'FAILED  '}  ${v.database}  ${v.check}: ${v.detail ?? (v.ok ? 'ok' : 'failed')}`);
  }
  if (result.summary.manifest) lines.push(`  manifest  ${result.summary.manifest}`);
  if (result.status === 'success' && result.summary.artifacts.length) {
    lines.push('  restore without dbflow:');
    for (const a of result.summary.artifacts) lines.push(`    ${stockRestoreCommand(a, restore, read)}`);
  }
  lines.push(`  run record ${result.dir}`);
  return lines.join('\n');
}

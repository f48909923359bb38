// The closing summary of a run: artifacts, verified counts, manifest, and how to restore by hand.
import type { RunResult } from '../engine/engine.js';
import { formatBytes, formatDuration } from './format.js';

const DECODE: Record<string, string> = { openpgp: 'gpg --decrypt', zstd: 'zstd -d', gzip: 'gzip -d' };

/** Stock commands that turn a stored artifact back into its raw dump. */
export function stockRestoreCommand(artifact: RunResult['summary']['artifacts'][number]): string {
  const file = artifact.url.replace(/^file:\/\//, '');
  const steps = [...artifact.layers].reverse().map((l) => DECODE[l.codec] ?? `<decode ${l.codec}>`);
  const db = artifact.database;
  const [first, ...rest] = steps;
  const decoded = first ? [`${first} ${file}`, ...rest].join(' | ') : `cat ${file}`;
  switch (artifact.format) {
    case 'pg_dump-custom':
      return `${decoded} | pg_restore --no-owner --clean --if-exists -d <new database>`;
    case 'mysql-sql':
      return `${decoded} | mariadb <new database>`;
    case 'pg_dump-directory-tar':
      return `mkdir ${db}.d && ${decoded} | tar -x -C ${db}.d && pg_restore --no-owner --clean --if-exists -j 4 -d <new database> ${db}.d`;
  }
  const out = artifact.format === 'sqlite3' ? `${db}.sqlite3` : `${db}.dump`;
  return first ? `${decoded} > ${out}` : `cp ${file} ${out}`;
}

/** Lines of the summary printed after a run. */
export function renderSummary(pipeline: string, result: RunResult): string {
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
    for (const a of result.summary.artifacts) lines.push(`    ${stockRestoreCommand(a)}`);
  }
  lines.push(`  run record ${result.dir}`);
  return lines.join('\n');
}

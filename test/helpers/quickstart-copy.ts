// The quickstart pipeline copied into a test's folder, with its repository, upload key and storage settings replaced.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './cli.js';

/** What to change in the copy; unset keeps the quickstart's own value. */
export interface QuickstartChanges {
  /** `vars.repo`, e.g. `file:///tmp/x/{{ pipeline.name }}` or `s3://bucket/backups`. */
  repo?: string;
  /** The upload step's `to:` (a template). */
  to?: string;
  /** The upload step's `storage:` settings, as YAML flow text, e.g. `{ mode: "0640" }`. */
  storage?: string;
}

/** Writes `quickstart.yaml` (and its passphrase file) into `dir` with `changes`; returns the pipeline's path. */
export function quickstartCopy(dir: string, changes: QuickstartChanges = {}): string {
  const source = readFileSync(path.join(repoRoot, 'pipelines', 'quickstart.yaml'), 'utf8');
  let yaml = source;
  const replace = (re: RegExp, by: string): void => {
    assert.match(yaml, re, 'quickstart.yaml has the line to replace');
    yaml = yaml.replace(re, by);
  };
  if (changes.repo !== undefined) replace(/^ {2}repo: .*$/m, `  repo: ${JSON.stringify(changes.repo)}`);
  if (changes.to !== undefined || changes.storage !== undefined) {
    const to = changes.to ?? '{{ vars.repo }}/{{ run.id }}/demo.sqlite3.zst.pgp';
    const storage = changes.storage ? `, storage: ${changes.storage}` : '';
    replace(/^( +with: )\{ to: "\{\{ vars\.repo \}\}\/[^"]+" \}$/m, `$1{ to: ${JSON.stringify(to)}${storage} }`);
  }
  writeFileSync(path.join(dir, 'quickstart.yaml'), yaml);
  copyFileSync(path.join(repoRoot, 'pipelines', 'quickstart.passphrase'), path.join(dir, 'quickstart.passphrase'));
  return path.join(dir, 'quickstart.yaml');
}

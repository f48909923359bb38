// The repository commands through the CLI, over a real quickstart backup in a file:// repository:
// backups list, verify, restore (SQLite), prune — and what each does with damaged or half-written backups.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dbflow, hasStackTrace, mapLimit } from '../helpers/cli.js';
import {
  copyBackup,
  fakeRun,
  filesUnder,
  flipByte,
  manifestIn,
  ok,
  quickstartBackup,
  truncateBy,
  type QuickstartBackup,
} from '../helpers/repo.js';
import { requireTool } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

const ARTIFACT = 'demo.sqlite3.zst.pgp';

interface Listed {
  repo: string;
  backups: {
    url: string;
    run_id: string;
    pipeline: string;
    bytes: number;
    databases: string[];
    status: string;
    last_verify: { ok: boolean; verified_at: string; failed: string[] } | null;
    missing: string[];
  }[];
  orphans: { objects: number; folders: { folder: string; objects: string[] }[] };
}

describe('repository commands over a quickstart backup', { timeout: 600_000 }, () => {
  let q: QuickstartBackup;
  let cwd: string;
  let skipped: string | undefined;
  const run = (args: string[], env: Record<string, string | undefined> = {}) =>
    dbflow(args, { cwd, env: { DBFLOW_PASSPHRASE: undefined, DBFLOW_TARGET_PASSWORD: undefined, ...env } });
  const withKey = (args: string[]) => run([...args, '--passphrase-file', q.passphraseFile]);
  const list = async (repo: string): Promise<Listed> =>
    JSON.parse(ok(await run(['backups', 'list', repo, '--json']), 'backups list')) as Listed;

  before(async () => {
    if (!(await requireTool({ skip: (m) => (skipped = m) }, 'zstd', 'zstd'))) return;
    cwd = tmpDir(undefined, 'dbflow-repo-test-');
    q = await quickstartBackup(cwd);
  });
  after(() => cwd && rmSync(cwd, { recursive: true, force: true }));

  it('has help for every repository command', async (t) => {
    if (skipped) return t.skip(skipped);
    const top = await run(['--help']);
    for (const c of ['backups', 'verify', 'restore', 'prune']) assert.match(top.stdout, new RegExp(`^  ${c}\\b`, 'm'), `--help lists ${c}`);
    const commands = [['backups', 'list'], ['verify'], ['restore'], ['prune']];
    const results = await mapLimit(commands, 2, (c) => run([...c, '--help']));
    results.forEach((r, i) => {
      assert.equal(r.exitCode, 0);
      assert.match(r.stdout, new RegExp(`^Usage: dbflow ${commands[i]!.join(' ')} `));
    });
    assert.match(results[1]!.stdout, /--passphrase-file <file>/);
    assert.doesNotMatch(results[1]!.stdout, /--passphrase </, 'no passphrase on the command line');
  });

  it('lists the backup with its time, pipeline, run id, size, databases and status', async (t) => {
    if (skipped) return t.skip(skipped);
    const text = ok(await run(['backups', 'list', q.repo]), 'backups list');
    const m = manifestIn(q.dir);
    const [header, line, footer] = text.trimEnd().split('\n');
    assert.match(header!, /^TIME +PIPELINE +RUN +SIZE +DATABASES +STATUS +BACKUP$/);
    assert.match(
      line!,
      new RegExp(
        `^${m.run.started_at.slice(0, 10)} \\S+Z +quickstart +${q.runId} +\\d+(\\.\\d)? MiB +demo +verified +${q.url.replace(/[.]/g, '\\.')}$`,
      ),
    );
    assert.equal(footer, '1 backup; no orphaned objects');
    const json = await list(q.repo);
    assert.deepEqual(
      json.backups.map((b) => [b.url, b.run_id, b.pipeline, b.bytes, b.databases, b.status, b.last_verify, b.missing]),
      [[q.url, q.runId, 'quickstart', m.artifacts[0]!.bytes, ['demo'], 'verified', null, []]],
    );
    assert.equal(json.orphans.objects, 0);
  });

  it('verifies it, records the result next to the manifest, and list shows it', async (t) => {
    if (skipped) return t.skip(skipped);
    const r = await withKey(['verify', q.url]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^ok +demo +${ARTIFACT.replace(/\./g, '\\.')} +[\\d.]+ MiB stored, sha256 ok → openpgp → zstd → [\\d.]+ MiB dump, size and sha256 equal to the dump taken$`,
        'm',
      ),
    );
    assert.match(r.stdout, /✔ 1 of 1 artifact verified/);
    const record = JSON.parse(readFileSync(path.join(q.dir, 'verify.json'), 'utf8')) as {
      format: string;
      ok: boolean;
      artifacts: { path: string; ok: boolean }[];
    };
    assert.deepEqual([record.format, record.ok, record.artifacts.map((a) => [a.path, a.ok])], ['dbflow-verify', true, [[ARTIFACT, true]]]);
    assert.equal((await list(q.repo)).backups[0]!.last_verify?.ok, true);
    // The passphrase also comes from the environment.
    const fromEnv = await run(['verify', q.url, '--no-record'], { DBFLOW_PASSPHRASE: q.passphrase });
    assert.equal(fromEnv.exitCode, 0, fromEnv.stderr);
  });

  it('without a passphrase or with a wrong one, verify and restore exit 3 (not checked), say where the passphrase comes from, and record nothing', async (t) => {
    if (skipped) return t.skip(skipped);
    const dir = copyBackup(q.dir, path.join(cwd, 'backups', 'nokey', q.runId));
    rmSync(path.join(dir, 'verify.json'), { force: true });
    const url = `file://./backups/nokey/${q.runId}`;
    const wrongFile = path.join(cwd, 'wrong.passphrase');
    writeFileSync(wrongFile, 'not the passphrase\n');
    const target = path.join(cwd, 'nokey.sqlite3');
    writeFileSync(target, '');
    const [r, wrong, restore] = await mapLimit(
      [
        ['verify', url],
        ['verify', url, '--passphrase-file', wrongFile],
        ['restore', url, '--to', `sqlite:${target}`],
      ],
      2,
      (a) => run(a),
    );
    // Exit 3: the check could not run (a rotated or missing secret), which monitoring tells from 1 (damaged).
    assert.equal(r!.exitCode, 3, r!.stderr);
    assert.match(
      r!.stderr,
      /^dbflow: verify could not check 1 of 1 artifact of .*, which says nothing about the backup \(exit 3: not checked; exit 1 would mean damaged\)/,
    );
    assert.match(
      r!.stderr,
      /encrypted with a passphrase and none was given; pass it with --passphrase-file F or the DBFLOW_PASSPHRASE environment variable/,
    );
    assert.match(r!.stdout, /^NOT CHECKED {2}demo /m);
    assert.equal(wrong!.exitCode, 3, wrong!.stderr);
    assert.match(
      wrong!.stderr,
      /the passphrase given \(--passphrase-file or DBFLOW_PASSPHRASE\) does not decrypt it; check it \(was it rotated\?\)/,
    );
    assert.equal(restore!.exitCode, 3, restore!.stderr);
    assert.match(
      restore!.stderr,
      /^dbflow: restore could not decrypt .*: it is encrypted with a passphrase and none was given; pass it with --passphrase-file F/,
    );
    for (const x of [r!, wrong!, restore!]) {
      assert.doesNotMatch(x.stderr + x.stdout, /secrets\.passphrase|pass it as "passphrase"/, 'command-line wording, not pipeline wording');
      assert.equal(hasStackTrace(x.stderr), false);
    }
    assert.equal(existsSync(path.join(dir, 'verify.json')), false, 'an unchecked backup gets no verify record');
  });

  // A copy of the backup in its own repository, damaged by `damage`; verify and restore must fail naming the object.
  const damaged = async (name: string, damage: (artifact: string, dir: string) => void, reason: RegExp): Promise<void> => {
    const dir = copyBackup(q.dir, path.join(cwd, 'backups', name, q.runId));
    damage(path.join(dir, ARTIFACT), dir);
    const url = `file://./backups/${name}/${q.runId}`;
    const object = `${url}/${ARTIFACT}`;
    const v = await withKey(['verify', url]);
    assert.equal(v.exitCode, 1, `${v.stdout}\n${v.stderr}`);
    assert.match(v.stdout, new RegExp(`^FAIL +demo +${ARTIFACT.replace(/\./g, '\\.')} `, 'm'));
    assert.ok(v.stderr.startsWith(`dbflow: verify failed: 1 of 1 artifact of ${url} did not pass:\n  ${object}: `), v.stderr);
    assert.match(v.stderr, reason);
    assert.equal(hasStackTrace(v.stderr), false, v.stderr);
    const record = JSON.parse(readFileSync(path.join(dir, 'verify.json'), 'utf8')) as {
      ok: boolean;
      artifacts: { ok: boolean; detail: string }[];
    };
    assert.equal(record.ok, false);
    assert.match(record.artifacts[0]!.detail, reason);
    const listed = await list(`file://./backups/${name}`);
    assert.deepEqual(listed.backups[0]!.last_verify, {
      ok: false,
      verified_at: listed.backups[0]!.last_verify!.verified_at,
      failed: [ARTIFACT],
    });

    const target = path.join(cwd, `restored-${name}.sqlite3`);
    const r = await withKey(['restore', url, '--database', 'demo', '--to', `sqlite:${target}`, '--force']);
    assert.equal(r.exitCode, 1, `${r.stdout}\n${r.stderr}`);
    assert.ok(r.stderr.startsWith(`dbflow: ${object}: `), r.stderr);
    assert.match(r.stderr, reason);
    assert.match(r.stderr, /Nothing was restored into|had begun/);
    assert.equal(existsSync(target), false, 'the sqlite driver leaves no target behind');
  };

  it('one flipped byte in the middle of the artifact: verify and restore fail naming it', async (t) => {
    if (skipped) return t.skip(skipped);
    await damaged('flip', (f) => flipByte(f), /sha256 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
  });

  it('one flipped byte near its end: the same', async (t) => {
    if (skipped) return t.skip(skipped);
    await damaged('flip-end', (f) => flipByte(f, readFileSync(f).length - 3), /sha256 is [0-9a-f]{64}, the manifest says/);
  });

  it('a truncated artifact: verify and restore fail naming it and its size', async (t) => {
    if (skipped) return t.skip(skipped);
    await damaged('truncated', (f) => truncateBy(f, 1000), /stored object is \d+ bytes, the manifest says \d+/);
  });

  it('damage the manifest agrees with (its sha256 rewritten) is caught by the OpenPGP integrity check', async (t) => {
    if (skipped) return t.skip(skipped);
    await damaged(
      'mdc',
      (f, dir) => {
        flipByte(f);
        const m = manifestIn(dir);
        m.artifacts[0]!.sha256 = createHashOf(f);
        writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
      },
      /openpgp: integrity check \(MDC\) failed.*size and sha256 equal the manifest's/,
    );
  });

  it('restore --list shows the databases, tables with row counts, and artifacts', async (t) => {
    if (skipped) return t.skip(skipped);
    const out = ok(await run(['restore', q.url, '--list']), 'restore --list');
    const m = manifestIn(q.dir);
    assert.match(out, new RegExp(`^database +demo +\\(sqlite [\\d.]+, taken .+; 3 tables, \\d+ rows\\)$`, 'm'));
    for (const [table, { rows }] of Object.entries(m.databases.demo!.tables))
      assert.match(out, new RegExp(`^  ${table} +${rows} +-$`, 'm'));
    assert.match(
      out,
      new RegExp(`^  demo +${ARTIFACT.replace(/\./g, '\\.')} +[\\d.]+ MiB +sqlite3 +zstd\\+openpgp +[\\d.]+ MiB dump$`, 'm'),
    );
  });

  it('restores into an empty SQLite file, refuses a non-empty or uncheckable target without --force', async (t) => {
    if (skipped) return t.skip(skipped);
    const target = path.join(cwd, 'restored.sqlite3');
    const missing = await withKey(['restore', q.url, '--database', 'demo', '--to', `sqlite:${target}`]);
    assert.equal(missing.exitCode, 1);
    assert.match(
      missing.stderr,
      /^dbflow: the target sqlite:.*restored\.sqlite3 does not exist\. Create it first \(createdb, CREATE DATABASE; for sqlite an empty file\), or pass --create to have restore create it\.\n$/,
    );
    // --create makes the file (and its folder); --database may be left out: the backup holds one database.
    const created = path.join(cwd, 'made', 'by-create.sqlite3');
    const c = await withKey(['restore', q.url, '--to', `sqlite:${created}`, '--create']);
    assert.equal(c.exitCode, 0, c.stderr);
    assert.match(c.stdout, /✔ 3 tables, \d+ rows equal to the backup's counts\n$/);
    writeFileSync(target, '');
    const r = await withKey(['restore', q.url, '--database', 'demo', '--to', `sqlite:${target}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const m = manifestIn(q.dir);
    for (const [table, { rows }] of Object.entries(m.databases.demo!.tables))
      assert.match(r.stdout, new RegExp(`^${table} +${rows} +${rows} +ok$`, 'm'));
    assert.match(r.stdout, /✔ 3 tables, \d+ rows equal to the backup's counts\n$/);
    const again = await withKey(['restore', q.url, '--database', 'demo', '--to', `sqlite:${target}`]);
    assert.equal(again.exitCode, 1);
    assert.match(
      again.stderr,
      /^dbflow: refusing to restore into sqlite:.* it is not empty \(3 tables: customers, order_items, orders\)\. .*--force/,
    );
  });

  it('restore: usage errors exit 2 (an unknown --database, no --to); without --database the one database is taken', async (t) => {
    if (skipped) return t.skip(skipped);
    const [none, unknown, noTarget] = await mapLimit(
      [
        ['restore', q.url, '--to', 'sqlite:./x.db'],
        ['restore', q.url, '--database', 'dmeo', '--to', 'sqlite:./x.db'],
        ['restore', q.url, '--database', 'demo'],
      ],
      2,
      (a) => run(a),
    );
    assert.equal(none!.exitCode, 1, none!.stderr);
    assert.match(none!.stderr, /the target sqlite:\.\/x\.db does not exist/);
    assert.equal(unknown!.exitCode, 2);
    assert.match(unknown!.stderr, /holds no database "dmeo"\. Did you mean "demo"\?/);
    assert.equal(noTarget!.exitCode, 2);
    assert.match(noTarget!.stderr, /restore needs --to <database url>/);
  });

  it('a folder without manifest.json is not a backup: not listed, counted as orphaned, refused by restore and verify', async (t) => {
    if (skipped) return t.skip(skipped);
    const dir = copyBackup(q.dir, path.join(cwd, 'backups', 'nomanifest', q.runId));
    rmSync(path.join(dir, 'manifest.json'));
    const files = filesUnder(dir).length;
    const listed = await list('file://./backups/nomanifest');
    assert.deepEqual(listed.backups, []);
    assert.equal(listed.orphans.objects, files);
    const text = ok(await run(['backups', 'list', 'file://./backups/nomanifest']), 'backups list');
    assert.match(
      text,
      new RegExp(
        `^no backups in file://\\./backups/nomanifest\norphaned: file://\\./backups/nomanifest/${q.runId}/ \\(${files} objects, \\S+ old\\)\n`,
      ),
    );
    assert.match(
      text,
      new RegExp(
        `\n0 backups; ${files} orphaned objects \\([^)]+\\) in 1 folder: failed or unfinished runs and writes, not backups \\(\`dbflow prune\` removes them after --orphan-grace\\)\n$`,
      ),
    );
    const url = `file://./backups/nomanifest/${q.runId}`;
    for (const args of [
      ['restore', url, '--database', 'demo', '--to', 'sqlite:./x.db'],
      ['verify', url],
    ]) {
      const r = await withKey(args);
      assert.equal(r.exitCode, 1, args[0]);
      assert.equal(
        r.stderr,
        `dbflow: "${url}" is not a backup: it holds ${files} objects but no manifest.json: a run that failed or is still writing (a backup exists only once its manifest is written, last). List the backups with \`dbflow backups list <repository>\`.\n`,
      );
    }
    const nothing = await withKey(['verify', 'file://./backups/nothing-here']);
    assert.equal(nothing.exitCode, 1);
    assert.match(nothing.stderr, /"file:\/\/\.\/backups\/nothing-here" is not a backup: nothing is stored there/);
  });

  it('prune --dry-run lists what a live prune then deletes, exactly; manifests go first; the newest verified and young orphans stay', async (t) => {
    if (skipped) return t.skip(skipped);
    const repoDir = path.join(cwd, 'backups', 'history');
    mkdirSync(repoDir, { recursive: true });
    // Six daily backups; only the second is verified, so no rule but "newest verified" keeps it.
    const runs = ['01', '02', '03', '04', '05', '06'].map((d) =>
      fakeRun(q.dir, repoDir, `2026-01-${d}T02:00:00Z`, d === '02' ? 'verified' : 'unverified'),
    );
    // Two runs that never got a manifest: one long ago, one that may still be writing.
    const stale = path.join(repoDir, '20200101T000000Z-dead');
    const young = path.join(
      repoDir,
      `${new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z')}-beef`,
    );
    for (const d of [stale, young]) {
      mkdirSync(d);
      writeFileSync(path.join(d, ARTIFACT), 'partial');
    }
    const before = filesUnder(repoDir);
    const repo = 'file://./backups/history';
    const url = (dir: string) => `${repo}/${path.basename(dir)}`;

    const dry = JSON.parse(ok(await run(['prune', repo, '--keep-last', '2', '--dry-run', '--json']), 'prune --dry-run')) as {
      dry_run: boolean;
      kept: { url: string; reasons: string[] }[];
      removed: { url: string; objects: string[] }[];
      orphans: { folder: string; remove: boolean; objects: string[] }[];
      deleted: string[];
    };
    assert.equal(dry.dry_run, true);
    assert.deepEqual(dry.deleted, []);
    assert.deepEqual(filesUnder(repoDir), before, 'a dry run deletes nothing');
    assert.deepEqual(
      dry.kept.map((k) => [k.url, k.reasons]),
      [
        [url(runs[5]!.dir), ['last 1/2']],
        [url(runs[4]!.dir), ['last 2/2']],
        [url(runs[1]!.dir), ['newest verified']],
      ],
    );
    assert.deepEqual(
      dry.removed.map((r) => r.url),
      [url(runs[3]!.dir), url(runs[2]!.dir), url(runs[0]!.dir)],
    );
    assert.deepEqual(
      dry.orphans.map((o) => [o.folder, o.remove]).sort(),
      [
        [url(stale), true],
        [url(young), false],
      ].sort(),
    );
    const toDelete = [...dry.removed.flatMap((r) => r.objects), ...dry.orphans.filter((o) => o.remove).flatMap((o) => o.objects)].sort();

    const text = ok(await run(['prune', repo, '--keep-last', '2', '--dry-run']), 'prune --dry-run');
    assert.match(
      text,
      new RegExp(`^keep +2026-01-02 02:00:00Z +quickstart +${url(runs[1]!.dir).replace(/\./g, '\\.')} +newest verified$`, 'm'),
    );
    assert.match(
      text,
      new RegExp(
        `^would remove +2026-01-01 02:00:00Z +quickstart +${url(runs[0]!.dir).replace(/\./g, '\\.')} +no rule keeps it \\(\\d objects\\)$`,
        'm',
      ),
    );
    assert.match(
      text,
      /^keep orphaned .*-beef\/ \(1 object\): no manifest yet; its run started \d+s ago, within --orphan-grace 24h: it may still be writing$/m,
    );
    assert.match(
      text,
      /^would remove orphaned .*20200101T000000Z-dead\/ \(1 object\): no manifest; its run started \d+d(\d+h)? ago \(older than --orphan-grace 24h\)$/m,
    );
    assert.match(text, /^3 kept, 3 to remove; would remove \d+ objects \(dry run: nothing was deleted\)$/m);

    const live = await run(['prune', repo, '--keep-last', '2']);
    assert.equal(live.exitCode, 0, live.stderr);
    const deleted = [...live.stdout.matchAll(/^ {2}deleted (\S+)$/gm)].map((m) => m[1]!);
    assert.deepEqual([...deleted].sort(), toDelete, 'the live prune deletes exactly what the dry run listed');
    for (const r of dry.removed) {
      const mine = deleted.filter((d) => d.startsWith(`${r.url}/`));
      assert.equal(mine[0], `${r.url}/manifest.json`, `${r.url}: its manifest goes first`);
    }
    const gone = new Set(toDelete.map((u) => path.relative(repoDir, path.join(cwd, u.replace(/^file:\/\//, '')))));
    assert.deepEqual(
      filesUnder(repoDir),
      before.filter((f) => !gone.has(f)),
    );
    const after = await list(repo);
    assert.deepEqual(
      after.backups.map((b) => b.url),
      dry.kept.map((k) => k.url),
    );
    assert.deepEqual(
      after.orphans.folders.map((f) => f.folder),
      [url(young)],
    );
  });

  it('prune needs a policy and a valid grace period (exit 2)', async (t) => {
    if (skipped) return t.skip(skipped);
    const [none, grace, bad] = await mapLimit(
      [
        ['prune', q.repo],
        ['prune', q.repo, '--keep-last', '1', '--orphan-grace', 'soon'],
        ['prune', q.repo, '--keep-daily', '-1'],
      ],
      2,
      (a) => run(a),
    );
    assert.equal(none!.exitCode, 2);
    assert.match(
      none!.stderr,
      /^dbflow: prune needs a policy: at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly above 0\.\n$/,
    );
    assert.equal(grace!.exitCode, 2);
    assert.match(grace!.stderr, /--orphan-grace must be a duration such as 24h/);
    assert.equal(bad!.exitCode, 2);
    assert.match(bad!.stderr, /--keep-daily must be a whole number \(0 or more\), not "-1"/);
    assert.ok(existsSync(q.dir), 'nothing was pruned');
  });

  it('a repository or backup may be given as a plain path; a repository that does not exist is an error (exit 1)', async (t) => {
    if (skipped) return t.skip(skipped);
    const [relative, absolute, backup, missing, missingUrl] = await mapLimit(
      [
        ['backups', 'list', './backups/quickstart', '--json'],
        ['backups', 'list', path.join(cwd, 'backups', 'quickstart'), '--json'],
        ['restore', `backups/quickstart/${q.runId}`, '--list'],
        ['backups', 'list', './backups/quickstrat'],
        ['prune', 'file://./backups/quickstrat', '--keep-last', '1'],
      ],
      2,
      (args) => run(args),
    );
    const runIds = (r: typeof relative) => (JSON.parse(ok(r!, 'backups list')) as Listed).backups.map((b) => b.run_id);
    assert.deepEqual(runIds(relative), [q.runId]);
    assert.deepEqual(runIds(absolute), [q.runId]);
    assert.match(ok(backup!, 'restore --list'), /^database {2}demo /m);
    for (const r of [missing!, missingUrl!]) {
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(
        r.stderr,
        /^dbflow: there is no repository at "file:\/\/\.\/backups\/quickstrat": nothing is stored there\. Check the path or URL/,
      );
      assert.equal(r.stdout, '');
    }
  });
});

function createHashOf(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

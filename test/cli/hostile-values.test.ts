// Hostile pipelines: files built to exhaust the reader (alias bombs, huge files, deep nesting), and
// hostile values in every templated field: shell injection, template syntax, path segments, NUL, newlines. Each must give a clear error (exit 2 with file:line:col, or exit 1 naming
// the step) or a correct run — never a command executed, a file written outside its place, or a
// stack trace. The suite prints how many values it tried and how many violations it found.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPipelineText, SpecError } from '../../src/index.js';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

// `MARK` becomes a file path: a value that gets executed by a shell creates it.
const TEMPLATES = [
  '$(touch MARK)',
  '`touch MARK`',
  '; touch MARK',
  '&& touch MARK #',
  '| touch MARK',
  '"; touch MARK; echo "',
  "'; touch MARK; '",
  'line one\nline two; touch MARK',
  '{{ env.HOME }}',
  '}} {{',
  '{{#each env}}{{this}}{{/each}}',
  '../../../../../../tmp/MARKNAME',
  '..',
  'a\u0000b',
  '$HOME ${PATH} %s %n',
  '-rf --help',
];

let tried = 0;
const violations: string[] = [];
after(() => {
  // The figures, for whoever reads the test log.
  console.log(`hostile values: ${tried} values tried in pipeline fields, ${violations.length} violations found`);
  for (const v of violations) console.log(`  violation: ${v}`);
});

const yamlString = (s: string): string => JSON.stringify(s); // a JSON string is a YAML double-quoted string

// A runnable SQLite pipeline; `field` decides where the hostile value goes.
function pipeline(field: string, value: string): string {
  const v = yamlString(value);
  const at = (name: string, normal: string): string => (field === name ? v : normal);
  return `version: 1
name: ${at('name', 'hostile')}
description: ${at('description', '"a pipeline"')}
secrets:
  passphrase: { env: ${at('secret-env', 'HOSTILE_PASSPHRASE')} }
vars:
  label: ${at('vars', '"plain"')}
  ${field === 'var-name' ? `${v}: x` : 'other: x'}
databases:
  app: { driver: sqlite, url: ${at('db-url', '"sqlite:./data/app.db"')}, options: { busy_timeout_ms: ${at('db-option', '1000')} } }
steps:
  - { id: ${at('step-id', 'seed')}, uses: sqlite-seed, with: { database: ${at('with-database', 'app')}, rows: 20 } }
  - { id: snapshot, uses: snapshot, needs: ${at('needs', 'seed')}, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: ${at('uses', 'compress')}, input: ${at('input', 'dump')}, with: { algorithm: ${at('with-enum', 'zstd')} } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/{{ vars.label }}.zst.pgp" } }
`;
}

const FIELDS = [
  'name',
  'description',
  'secret-env',
  'vars',
  'var-name',
  'db-url',
  'db-option',
  'step-id',
  'with-database',
  'needs',
  'uses',
  'input',
  'with-enum',
];

describe('hostile values in pipeline fields', () => {
  it('validate: every value in every field is a clear error with a position, or valid; nothing is executed', async (t) => {
    const dir = tmpDir(t);
    const mark = path.join(dir, 'pwned');
    const files: { file: string; field: string; value: string }[] = [];
    TEMPLATES.forEach((template, i) => {
      const value = template.replaceAll('MARKNAME', path.basename(dir)).replaceAll('MARK', mark);
      for (const field of FIELDS) {
        const file = path.join(dir, `${field}-${i}.yaml`);
        writeFileSync(file, pipeline(field, value));
        files.push({ file, field, value });
      }
    });
    tried += files.length;
    const r = await dbflow(['validate', '--json', ...files.map((f) => f.file)], { cwd: dir, env: { HOSTILE_PASSPHRASE: 'a passphrase' } });
    assert.equal(hasStackTrace(r.stderr + r.stdout), false, r.stderr);
    const results = JSON.parse(r.stdout) as { file: string; ok: boolean; problems?: { line: number; col: number; message: string }[] }[];
    assert.equal(results.length, files.length);
    results.forEach((res, i) => {
      const { field, value } = files[i]!;
      const where = `${field} = ${JSON.stringify(value)}`;
      if (!res.ok && !(res.problems?.length && res.problems.every((p) => p.line >= 1 && p.col >= 1 && p.message.length > 0)))
        violations.push(`${where}: refused without a position`);
    });
    if (existsSync(mark)) violations.push(`validate executed a command (${mark} exists)`);
    assert.equal(existsSync(mark), false, 'no command was executed');
    // Names that must stay names are refused; the runtime-only fields are accepted as text.
    const okOf = (field: string, template: string): boolean =>
      results[files.findIndex((f) => f.field === field && f.value === template.replaceAll('MARK', mark))]!.ok;
    assert.equal(okOf('name', '$(touch MARK)'), false, 'a pipeline name is an identifier');
    assert.equal(okOf('step-id', '; touch MARK'), false, 'a step id is an identifier');
    assert.equal(okOf('description', '$(touch MARK)'), true, 'a description is text');
    assert.equal(okOf('vars', '`touch MARK`'), true, 'a variable is text');
    assert.equal(okOf('vars', '{{ env.HOME }}'), true, 'a variable may use env');
    assert.equal(okOf('vars', '}} {{'), false, 'a broken template is refused at validation');
  });

  it('run: hostile values in vars, secrets, descriptions and database URLs give a correct run or a named failure, and nothing runs or escapes', async (t) => {
    const root = tmpDir(t);
    const dir = path.join(root, 'work');
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    const mark = path.join(root, 'pwned');
    const runs: { field: string; value: string }[] = [];
    for (const template of ['$(touch MARK)', '`touch MARK`', '"; touch MARK; echo "', 'line one\nline two; touch MARK', '{{ env.HOME }}']) {
      const value = template.replaceAll('MARK', mark);
      runs.push({ field: 'vars', value }, { field: 'description', value });
    }
    runs.push({ field: 'db-url', value: `sqlite:./data/$(touch ${mark}).db` }, { field: 'db-url', value: 'sqlite:./data/a b;c.db' });
    tried += runs.length + 1;
    for (const [i, { field, value }] of runs.entries()) {
      const file = path.join(dir, `run-${i}.yaml`);
      writeFileSync(file, pipeline(field, value));
      const r = await dbflow(['run', file, '--state-dir', path.join(root, 'state')], {
        cwd: dir,
        env: { HOSTILE_PASSPHRASE: 'a passphrase' },
      });
      const where = `run with ${field} = ${JSON.stringify(value)}`;
      if (hasStackTrace(r.stderr)) violations.push(`${where}: stack trace`);
      if (r.exitCode !== 0 && !(r.exitCode === 1 && /step "\w+"|"\w+" failed/.test(r.stderr + r.stdout)) && r.exitCode !== 2)
        violations.push(`${where}: exit ${r.exitCode}`);
      assert.ok([0, 1, 2].includes(r.exitCode), `${where}: exit ${r.exitCode}\n${r.stderr}`);
    }
    // A secret with shell and template syntax is a passphrase like any other.
    const secretRun = await dbflow(['run', path.join(dir, 'run-0.yaml'), '--state-dir', path.join(root, 'state')], {
      cwd: dir,
      env: { HOSTILE_PASSPHRASE: `$(touch ${mark}) \`touch ${mark}\` {{ env.HOME }} '";\n` },
    });
    assert.equal(secretRun.exitCode, 0, secretRun.stderr);
    if (existsSync(mark)) violations.push(`a run executed a command (${mark} exists)`);
    assert.equal(existsSync(mark), false, 'no command was executed');
    assert.deepEqual(readdirSync(root).sort(), ['state', 'work'], 'nothing was written beside the pipeline folder');
    assert.deepEqual(violations, []);
  });
});

// Files built to exhaust the reader: alias bombs, huge files, deep nesting.
// Nine levels of nine aliases each: 9^9 = 387 million values once expanded, 400 bytes as written.
function laughs(indent: string, flow = true): string {
  const names = 'abcdefghi';
  const lines = [
    `${indent}a: &a ${flow ? '["lol","lol","lol","lol","lol","lol","lol","lol","lol"]' : '{x1: lol, x2: lol, x3: lol, x4: lol, x5: lol, x6: lol, x7: lol, x8: lol, x9: lol}'}`,
  ];
  for (let i = 1; i < names.length; i++) {
    const prev = names[i - 1]!;
    const items = Array.from({ length: 9 }, (_, j) => (flow ? `*${prev}` : `k${j}: *${prev}`)).join(', ');
    lines.push(`${indent}${names[i]}: &${names[i]} ${flow ? `[${items}]` : `{${items}}`}`);
  }
  return lines.join('\n');
}

const head = 'version: 1\nname: bomb\n';
const step = (withText: string): string => `steps:\n  - id: s\n    uses: compress\n    input: s\n    with:\n${withText}\n`;

const bombs: Record<string, string> = {
  'in-vars.yaml': `${head}vars:\n${laughs('  ')}\nsteps: []\n`,
  'in-vars-maps.yaml': `${head}vars:\n${laughs('  ', false)}\nsteps: []\n`,
  'in-with.yaml': `${head}${step(laughs('      '))}`,
  'in-steps.yaml': `${head}defs:\n${laughs('  ')}\nsteps:\n  - { id: a, uses: compress, input: a, with: { level: *i } }\n`,
  'nested-sequences.yaml': `${head}vars:\n  v: [${laughs('', true)
    .split('\n')
    .map((l) => `{${l}}`)
    .join(', ')}]\nsteps: []\n`,
  'steps-list.yaml': `${head}defs:\n${laughs('  ')}\nsteps: *i\n`,
};

it('alias bombs ("billion laughs") in vars, with, steps and nested lists are refused with a position', async (t) => {
  const dir = tmpDir(t);
  const files = Object.entries(bombs).map(([name, text]) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  });
  tried += files.length;
  const r = await dbflow(['validate', ...files]);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.equal(hasStackTrace(r.stderr), false, r.stderr);
  for (const file of files) {
    assert.match(
      r.stderr,
      new RegExp(`^${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: YAML: the pipeline holds more than 100000 values once its aliases`, 'm'),
      `${path.basename(file)}:\n${r.stderr}`,
    );
  }
});

it('each alias bomb is refused in under a second, before it is expanded', async (t) => {
  const dir = tmpDir(t);
  for (const [name, text] of Object.entries(bombs)) {
    const file = path.join(dir, name);
    const started = performance.now();
    await assert.rejects(loadPipelineText(file, text, dir, { env: {} }), (err: unknown) => {
      assert.ok(err instanceof SpecError, String(err));
      assert.match(err.rendered, /more than 100000 values once its aliases/);
      return true;
    });
    const ms = performance.now() - started;
    assert.ok(ms < 1000, `${name} took ${ms.toFixed(0)} ms`);
  }
});

it('a few aliases that stay small are still fine', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'aliases.yaml');
  writeFileSync(
    file,
    `${head}vars:\n  base: &b {level: 3}\n  other: *b\ndatabases: { d: { driver: sqlite, url: "sqlite:./d.db" } }\nsteps:\n  - { id: seed, uses: sqlite-seed, with: { database: d } }\n`,
  );
  const r = await dbflow(['validate', file]);
  assert.equal(r.exitCode, 0, r.stderr);
});

it('a pipeline file over 1 MiB is refused before it is parsed; deep nesting is a clear error', async (t) => {
  const dir = tmpDir(t);
  const huge = path.join(dir, 'huge.yaml');
  const line = '  v: "a value that repeats"\n';
  writeFileSync(huge, `${head}vars:\n${line.repeat(Math.ceil((1024 * 1024) / line.length) + 10)}steps: [\n`);
  const deepFlow = path.join(dir, 'deep-flow.yaml');
  writeFileSync(deepFlow, `${head}steps: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`);
  const deepish = path.join(dir, 'deep-200.yaml');
  writeFileSync(deepish, `${head}vars:\n  v: ${'{a: '.repeat(200)}1${'}'.repeat(200)}\nsteps: []\n`);
  tried += 3;
  const r = await dbflow(['validate', huge, deepFlow, deepish]);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.equal(hasStackTrace(r.stderr), false, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`^${huge.replace(/[.]/g, '\\.')}:1:1: the pipeline file is 1\\.0 MiB; pipeline files may be at most 1 MiB`, 'm'),
  );
  assert.match(
    r.stderr,
    new RegExp(`^${deepFlow.replace(/[.]/g, '\\.')}:3:\\d+: YAML: lists and mappings nest too deeply \\(at most 64 levels\\)`, 'm'),
  );
  assert.match(r.stderr, new RegExp(`^${deepish.replace(/[.]/g, '\\.')}:4:\\d+: YAML: lists and mappings nest too deeply`, 'm'));
  // The source line of a 20,000-character line is shown around the caret, not whole.
  for (const l of r.stderr.split('\n')) assert.ok(l.length < 400, `a line of ${l.length} characters`);
});

// Storage keys that leave the repository after templates are filled in are refused (upload `to:`),
// also when the repository is a relative file:// URL made absolute against the pipeline's folder.
it('storage keys: an upload key with ".." segments from a variable does not write outside the repository', async (t) => {
  const root = tmpDir(t);
  const dir = path.join(root, 'work');
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const file = path.join(dir, 'escape.yaml');
  writeFileSync(file, pipeline('vars', '../../../escaped'));
  tried += 1;
  const r = await dbflow(['run', file, '--state-dir', path.join(root, 'state')], {
    cwd: dir,
    env: { HOSTILE_PASSPHRASE: 'a passphrase' },
  });
  assert.equal(hasStackTrace(r.stderr), false, r.stderr);
  const escaped = [
    path.join(root, 'escaped.zst.pgp'),
    path.join(dir, 'escaped.zst.pgp'),
    path.join(dir, 'backups', 'escaped.zst.pgp'),
  ].filter((f) => existsSync(f));
  if (escaped.length) t.diagnostic(`storage keys: upload wrote outside the repository: ${escaped.join(', ')}`);
  assert.deepEqual(escaped, [], `nothing outside backups/<run-id>/ (exit ${r.exitCode})`);
  if (r.exitCode !== 0) assert.match(r.stderr, /"upload"/, 'a refusal names the upload step');
});

// A root URL (`archive: to`, `marks: to`) filled from `vars.evil`: each rendering in `cases` that leaves its repository
// is refused by `command` with exit 2, naming `what` and the problem, before anything runs or is written; nothing is
// written beside `dir` (in `root`), and no repository is made in it.
async function refusesRenderings(
  root: string,
  dir: string,
  mark: string,
  command: string,
  what: string,
  pipelineFor: (to: string, evil: string) => string,
  cases: readonly { to: string; evil: string; problem: string }[],
): Promise<void> {
  for (const [i, { to, evil, problem }] of cases.entries()) {
    const file = path.join(dir, `${command}-rendered-${i}.yaml`);
    writeFileSync(file, pipelineFor(to, evil.replaceAll('MARK', mark)));
    const r = await dbflow([command, file], { cwd: dir });
    tried++;
    assert.equal(r.exitCode, 2, `${to} with ${JSON.stringify(evil)}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${what}: "to" renders to ".*", which ${problem}: .*nothing was stored`));
    assert.equal(hasStackTrace(r.stderr), false, r.stderr);
  }
  assert.equal(existsSync(mark), false, 'no command was executed');
  assert.deepEqual(readdirSync(root).sort(), ['work'], 'nothing was written beside the pipeline folder');
  assert.deepEqual(
    readdirSync(dir).filter((f) => !f.endsWith('.yaml') && f !== '.dbflow'),
    [],
    'no repository was made (only the state folder)',
  );
}

// The marks' `to:` (where `dbflow mark` stores its records): a rendering that leaves the repository is refused before
// any server is connected to or anything written.
it('marks to: hostile renderings are refused before anything is marked', async (t) => {
  const root = tmpDir(t);
  const dir = path.join(root, 'work');
  mkdirSync(dir);
  const mark = path.join(root, 'pwned');
  const marksPipeline = (to: string, evil: string): string => `version: 1
name: hostile
vars:
  evil: ${yamlString(evil)}
databases:
  main: { driver: postgres, url: "postgres://postgres@127.0.0.1:1/app" }
archive:
  main: { to: "file://./repo/wal" }
marks:
  databases: [main]
  to: ${yamlString(to)}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [main] } }
`;
  const rendered = [
    { to: 'file://./repo/{{ vars.evil }}', evil: '../../../escaped', problem: 'has a ".." segment' },
    { to: 'file://./repo/{{ vars.evil }}/marks', evil: '', problem: 'has an empty segment \\("//"\\)' },
    { to: 's3://bucket/{{ vars.evil }}', evil: '../other-bucket', problem: 'has a ".." segment' },
    { to: 'file://./repo/{{ vars.evil }}', evil: 'a\rb', problem: 'holds the control character U\\+000D' },
    { to: '{{ vars.evil }}', evil: '$(touch MARK)', problem: 'is not a storage URL \\(file://, s3://, sftp://\\)' },
  ];
  await refusesRenderings(root, dir, mark, 'mark', 'marks', marksPipeline, rendered);
});

// A list of upload keys: one copy's key that leaves its repository (or that names another copy's destination once
// rendered) refuses the whole upload before any copy is written, wherever the hostile key stands in the list.
it('storage keys: a hostile key in a list of copies refuses the upload before any copy is written', async (t) => {
  const root = tmpDir(t);
  const dir = path.join(root, 'work');
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const hostile = 'file://./backups/{{ run.id }}/{{ vars.label }}.zst.pgp';
  const cases = [
    { label: '../../../escaped', to: ['file://./good/{{ run.id }}/x.zst.pgp', hostile], refusal: /has a "\.\." segment/ },
    { label: '../../../escaped', to: [hostile, 's3://bucket/good/{{ run.id }}/x.zst.pgp'], refusal: /has a "\.\." segment/ },
    { label: 'a\u0000b', to: ['file://./good/{{ run.id }}/x.zst.pgp', hostile], refusal: /control character U\+0000/ },
    {
      label: 'plain',
      to: [hostile, 'file://./backups/{{ run.id }}/plain.zst.pgp'],
      refusal: /"with" is invalid after templates were filled in: \/to must NOT have duplicate items/,
    },
  ];
  for (const [i, { label, to, refusal }] of cases.entries()) {
    const file = path.join(dir, `copies-${i}.yaml`);
    const upload = `with: { to: "file://./backups/{{ run.id }}/{{ vars.label }}.zst.pgp" }`;
    const text = pipeline('vars', label);
    assert.ok(text.includes(upload));
    writeFileSync(file, text.replace(upload, `with: { to: ${JSON.stringify(to)} }`));
    tried++;
    const r = await dbflow(['run', file, '--state-dir', path.join(root, 'state')], {
      cwd: dir,
      env: { HOSTILE_PASSPHRASE: 'a passphrase' },
    });
    const where = `copies with label = ${JSON.stringify(label)} in ${JSON.stringify(to)}`;
    assert.equal(hasStackTrace(r.stderr), false, r.stderr);
    if (r.exitCode !== 1 || !refusal.test(r.stderr + r.stdout) || !/"upload"/.test(r.stderr + r.stdout))
      violations.push(`${where}: exit ${r.exitCode}, ${(r.stderr + r.stdout).split('\n').find((l) => /upload/.test(l)) ?? ''}`);
    const written = [
      path.join(dir, 'good'),
      path.join(dir, 'backups'),
      path.join(dir, 'escaped.zst.pgp'),
      path.join(root, 'escaped.zst.pgp'),
    ].filter((f) => existsSync(f));
    if (written.length) violations.push(`${where}: wrote ${written.join(', ')}`);
    assert.deepEqual(written, [], `${where}: nothing was written at any destination`);
  }
  assert.deepEqual(violations, []);
});

// The archive's `to:` (where `dbflow archive` stores a database's log): a value that is no URL is refused at
// validation with its position; one whose rendering leaves the repository (a "..", "." or empty segment from a
// variable or the environment) is refused by `dbflow archive` before it connects or writes anything.
it('archive to: hostile values are refused with a position, or before anything is archived', async (t) => {
  const root = tmpDir(t);
  const dir = path.join(root, 'work');
  mkdirSync(dir);
  const mark = path.join(root, 'pwned');
  const archivePipeline = (to: string, evil = 'plain'): string => `version: 1
name: hostile
vars:
  evil: ${yamlString(evil)}
databases:
  main: { driver: mysql, url: "mysql://root@127.0.0.1:1/app" }
archive:
  main:
    to: ${yamlString(to)}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [main] } }
  - { id: dump, uses: dump, with: { database: main, snapshot: snapshot } }
  - { id: upload, uses: upload, input: dump, with: { to: "file://./repo/{{ run.id }}/main.sql" } }
`;
  const notUrls = TEMPLATES.filter((v) => !v.includes('{{') && !/^[a-z][a-z0-9+.-]*:/i.test(v)).map((v) =>
    v.replaceAll('MARKNAME', path.basename(root)).replaceAll('MARK', mark),
  );
  for (const [i, value] of notUrls.entries()) {
    const file = path.join(dir, `to-${i}.yaml`);
    writeFileSync(file, archivePipeline(value));
    const r = await dbflow(['archive', file], { cwd: dir });
    tried++;
    const where = `archive to = ${JSON.stringify(value)}`;
    if (r.exitCode !== 2 || !/:9:9: "archive\.main\.to" must match format "url"/.test(r.stderr))
      violations.push(`${where}: exit ${r.exitCode}, ${r.stderr.split('\n')[0]}`);
    assert.equal(hasStackTrace(r.stderr), false, r.stderr);
  }
  const rendered = [
    { to: 'file://./repo/{{ vars.evil }}', evil: '../../../escaped', problem: 'has a ".." segment' },
    { to: 'file://./repo/{{ vars.evil }}/wal', evil: '', problem: 'has an empty segment \\("//"\\)' },
    { to: 'file://./repo/{{ vars.evil }}', evil: '.', problem: 'has a "." segment' },
    { to: 's3://bucket/{{ vars.evil }}/wal', evil: '../other-bucket', problem: 'has a ".." segment' },
    { to: 'file://./repo/{{ vars.evil }}', evil: 'a\nb', problem: 'holds the control character U\\+000A' },
    { to: '{{ vars.evil }}/wal', evil: '../../escaped', problem: 'is not a storage URL \\(file://, s3://, sftp://\\)' },
    { to: '{{ vars.evil }}', evil: '$(touch MARK)', problem: 'is not a storage URL \\(file://, s3://, sftp://\\)' },
  ];
  await refusesRenderings(root, dir, mark, 'archive', 'archive "main"', archivePipeline, rendered);
});

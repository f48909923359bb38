// A third-party plugin package (a storage, a codec and a step, importing values from `dbflow`, with no dbflow
// of its own) used by every command: run, backups list, verify, restore and prune; its errors; contracts.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { PLUGIN_CONTRACT, type Manifest } from '../../src/index.js';
import { runIdOf } from '../helpers/backup-run.js';
import { dbflow, hasStackTrace, repoRoot } from '../helpers/cli.js';
import { ok } from '../helpers/repo.js';
import { tmpDir } from '../helpers/tmp.js';

// The package: its objects live as files in one folder next to it (`store/`), named by their whole URL.
const PLUGIN_JS = `import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { DbflowError, definePlugin, defineStep, IntegrityError, RepositoryError } from 'dbflow';

const store = fileURLToPath(new URL('./store/', import.meta.url));
const fileOf = (url) => path.join(store, encodeURIComponent(url.slice('flat://'.length)));
const xor = (buf, key) => Buffer.from(buf.map((b) => b ^ key));

const flat = {
  scheme: 'flat',
  async put(url, body, { signal }) {
    mkdirSync(store, { recursive: true });
    const tmp = path.join(store, '.tmp-' + randomBytes(6).toString('hex'));
    try {
      await pipeline(body, createWriteStream(tmp), { signal });
      renameSync(tmp, fileOf(url));
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    return { url, bytes: statSync(fileOf(url)).size };
  },
  async get(url, options) {
    options?.signal?.throwIfAborted();
    if (!existsSync(fileOf(url))) throw new RepositoryError('flat: no object ' + url);
    const stream = createReadStream(fileOf(url));
    const signal = options?.signal;
    const onAbort = () => stream.destroy(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal?.removeEventListener('abort', onAbort));
    return stream;
  },
  async list(prefix, options) {
    options?.signal?.throwIfAborted();
    if (!existsSync(store)) return [];
    return readdirSync(store)
      .filter((f) => !f.startsWith('.tmp-'))
      .map((f) => ({ url: 'flat://' + decodeURIComponent(f), file: path.join(store, f) }))
      .filter((o) => o.url.startsWith(prefix))
      .map((o) => { const s = statSync(o.file); return { url: o.url, bytes: s.size, modified: s.mtime.toISOString() }; });
  },
  async delete(url, options) {
    options?.signal?.throwIfAborted();
    if (!options?.upload) rmSync(fileOf(url), { force: true });
  },
};

// Every byte XORed with the key, then the sha256 of the input: the decoder fails the stream when it differs.
const xorStep = defineStep({
  uses: 'xor',
  kind: 'transform',
  description: 'XOR every byte with a key; the sha256 of the input follows.',
  with: { type: 'object', additionalProperties: false, required: ['key'], properties: { key: { type: 'integer', minimum: 0, maximum: 255 } } },
  outputs: { type: 'object', properties: { layer: { type: 'object' } } },
  async run(ctx) {
    const { key } = ctx.with;
    if (key === 0) throw new DbflowError('xor: key 0 would store the data as it is; choose a key from 1 to 255.');
    const hash = createHash('sha256');
    const encoder = new Transform({
      transform(chunk, _e, done) { hash.update(chunk); done(null, xor(chunk, key)); },
      flush(done) { done(null, hash.digest()); },
    });
    return { output: ctx.input.pipe(encoder), outputs: { layer: { codec: 'xor', key } } };
  },
});

const xorCodec = {
  name: 'xor',
  decode({ layer }) {
    let tail = Buffer.alloc(0);
    const hash = createHash('sha256');
    return new Transform({
      transform(chunk, _e, done) {
        const all = Buffer.concat([tail, chunk]);
        const cut = Math.max(0, all.length - 32);
        const body = xor(all.subarray(0, cut), layer.key);
        tail = Buffer.from(all.subarray(cut));
        hash.update(body);
        done(null, body);
      },
      flush(done) {
        done(tail.length === 32 && hash.digest().equals(tail) ? null : new IntegrityError('xor: the sha256 at the end does not match: the data is damaged.'));
      },
    });
  },
};

export default definePlugin({ name: 'flat', contract: '2.0', version: '1.0.0', steps: [xorStep], storages: [flat], codecs: [xorCodec] });
`;

const pipelineYaml = (name: string, to: string, key = 90): string => `version: 1
name: ${name}
plugins: [dbflow-plugin-flat]
databases:
  demo: { driver: sqlite, url: "sqlite:./demo.sqlite3" }
steps:
  - { id: seed, uses: sqlite-seed, with: { database: demo, rows: 500 } }
  - { id: snapshot, uses: snapshot, needs: seed, with: { databases: [demo] } }
  - { id: dump, uses: dump, with: { database: demo, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: gzip } }
  - { id: scramble, uses: xor, input: compress, with: { key: ${key} } }
  - { id: upload, uses: upload, input: scramble, with: { to: "${to}/{{ run.id }}/demo.sqlite3.gz.xor" } }
  - { id: restore_test, uses: restore-test, with: { from: upload } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;

describe('a third-party plugin package (storage, codec, step) in every command', { timeout: 300_000 }, () => {
  let cwd: string;
  let pkg: string;
  let env: Record<string, string | undefined>;
  const run = (args: string[], extra: Record<string, string | undefined> = {}) => dbflow(args, { cwd, env: { ...env, ...extra } });
  const stored = (): string[] =>
    existsSync(path.join(pkg, 'store')) ? readdirSync(path.join(pkg, 'store')).map(decodeURIComponent).sort() : [];
  const manifestOf = (runId: string): Manifest =>
    JSON.parse(readFileSync(path.join(pkg, 'store', encodeURIComponent(`nightly/${runId}/manifest.json`)), 'utf8')) as Manifest;
  const runIds: string[] = [];

  before(async () => {
    cwd = tmpDir(undefined, 'dbflow-plugin-package-');
    pkg = path.join(cwd, 'node_modules', 'dbflow-plugin-flat');
    mkdirSync(pkg, { recursive: true });
    const manifest = {
      name: 'dbflow-plugin-flat',
      version: '1.0.0',
      type: 'module',
      exports: './index.js',
      peerDependencies: { dbflow: '*' },
    };
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify(manifest));
    writeFileSync(path.join(pkg, 'index.js'), PLUGIN_JS);
    // No config file or plugin list from the machine running the tests.
    env = { XDG_CONFIG_HOME: path.join(cwd, 'no-config'), DBFLOW_PLUGINS: undefined };
    writeFileSync(path.join(cwd, 'nightly.yaml'), pipelineYaml('nightly', 'flat://nightly'));
    for (let i = 0; i < 2; i++) {
      const r = await run(['run', 'nightly.yaml']);
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
      runIds.push(runIdOf(r.stdout));
    }
  });
  after(() => cwd && rmSync(cwd, { recursive: true, force: true }));

  it('run uploads through the plugin storage, restore-tests through its codec, and the manifest records the plugin', () => {
    const m = manifestOf(runIds[0]!);
    assert.equal(m.status, 'verified');
    assert.deepEqual(
      m.artifacts.map((a) => [a.url, a.layers.map((l) => l.codec)]),
      [[`flat://nightly/${runIds[0]}/demo.sqlite3.gz.xor`, ['gzip', 'xor']]],
    );
    assert.deepEqual(m.plugins, [
      {
        name: 'flat',
        version: '1.0.0',
        contract: '2.0',
        specifier: 'dbflow-plugin-flat',
        resolved: path.join(pkg, 'index.js'),
        steps: ['xor'],
        storages: ['flat'],
        codecs: ['xor'],
      },
    ]);
    assert.equal(m.tools['plugin:flat'], '1.0.0');
    assert.ok(stored().includes(`nightly/${runIds[1]}/manifest.json`));
  });

  it('backups list reads the plugin storage given with --plugin, and says how to load one when it is not', async () => {
    const listed = JSON.parse(
      ok(await run(['backups', 'list', 'flat://nightly', '--plugin', 'dbflow-plugin-flat', '--json']), 'backups list'),
    ) as {
      backups: { run_id: string; status: string }[];
    };
    assert.deepEqual(
      listed.backups.map((b) => [b.run_id, b.status]).sort(),
      runIds.map((id) => [id, 'verified']),
    );
    const without = await run(['backups', 'list', 'flat://nightly']);
    assert.equal(without.exitCode, 2);
    assert.match(
      without.stderr,
      /no storage for "flat:" URLs .*Known: "file", "s3", "sftp"\. A plugin's storage is loaded with --plugin <path or package>, DBFLOW_PLUGINS=/,
    );
    assert.ok(!hasStackTrace(without.stderr), without.stderr);
  });

  it('verify loads the storage from DBFLOW_PLUGINS and decodes with the codec', async () => {
    const r = await run(['verify', `flat://nightly/${runIds[0]}`], { DBFLOW_PLUGINS: 'dbflow-plugin-flat' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /sha256 ok → xor → gzip → [\d.]+ KiB dump/);
    assert.match(r.stdout, /✔ 1 of 1 artifact verified/);
    assert.ok(stored().includes(`nightly/${runIds[0]}/verify.json`), 'the record is written through the plugin storage');
  });

  it('restore loads the storage from the config file and restores the database', async () => {
    const config = path.join(cwd, 'config', 'dbflow');
    mkdirSync(config, { recursive: true });
    writeFileSync(path.join(config, 'config.yaml'), 'plugins:\n  - ../../node_modules/dbflow-plugin-flat/index.js\n');
    const r = await run(['restore', `flat://nightly/${runIds[1]}`, '--to', 'sqlite:./restored.sqlite3', '--create'], {
      XDG_CONFIG_HOME: path.join(cwd, 'config'),
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /✔ \d+ tables, \d+ rows equal to the backup's counts/);
  });

  it('verify and restore of a backup in a file repository load its codec from the manifest, with no flag', async () => {
    writeFileSync(path.join(cwd, 'local.yaml'), pipelineYaml('local', 'file://./backups/local'));
    const made = await run(['run', 'local.yaml']);
    assert.equal(made.exitCode, 0, made.stderr);
    const url = `file://./backups/local/${runIdOf(made.stdout)}`;
    const verified = await run(['verify', url]);
    assert.equal(verified.exitCode, 0, verified.stderr);
    assert.match(verified.stdout, /sha256 ok → xor → gzip →/);
    const restored = await run(['restore', url, '--to', 'sqlite:./restored-local.sqlite3', '--create']);
    assert.equal(restored.exitCode, 0, restored.stderr);
    // A plugin the manifest records but that is gone: named, with how to pass it.
    const moved = path.join(cwd, 'moved-plugin');
    cpSync(pkg, moved, { recursive: true });
    rmSync(pkg, { recursive: true });
    try {
      const r = await run(['verify', url]);
      assert.equal(r.exitCode, 3, r.stderr);
      assert.match(
        r.stderr,
        /this backup needs codec "xor" of plugin "flat" 1\.0\.0, which the run that made it loaded from \S+index\.js \("dbflow-plugin-flat" under its pipeline's plugins:\); it cannot be loaded here: .*Pass the plugin with --plugin <path or package>/,
      );
      const given = await run(['verify', url, '--no-record', '--plugin', path.join(moved, 'index.js')]);
      assert.equal(given.exitCode, 0, given.stderr);
    } finally {
      cpSync(moved, pkg, { recursive: true });
    }
  });

  it('prune removes through the plugin storage', async () => {
    const r = await run(['prune', 'flat://nightly', '--keep-last', '1', '--plugin', 'dbflow-plugin-flat']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /1 kept, 1 removed/);
    assert.deepEqual(
      [
        ...new Set(
          stored()
            .filter((u) => u.startsWith('nightly/'))
            .map((u) => u.split('/')[1]),
        ),
      ],
      [runIds[1]],
    );
  });

  it("passes dbflow/testing's storage and codec suites, run with node --test in its own folder as its author would", async () => {
    // dbflow as the package's peer dependency: the built one.
    const peer = path.join(cwd, 'node_modules', 'dbflow');
    if (!existsSync(peer)) symlinkSync(repoRoot, peer, 'dir');
    writeFileSync(
      path.join(pkg, 'conformance.test.js'),
      `import { randomBytes } from 'node:crypto';
import { describeCodec, describeStorage, encodeWith } from 'dbflow/testing';
import plugin from 'dbflow-plugin-flat';

describeStorage('flat storage', () => ({ storage: plugin.storages[0], prefix: 'flat://t-' + randomBytes(4).toString('hex') + '/' }), {
  unfinished: false,
});
const xor = plugin.steps.find((s) => s.uses === 'xor');
describeCodec('xor codec', () => ({ codec: plugin.codecs[0], encode: encodeWith(xor, { key: 77 }) }));
`,
    );
    const childEnv = { ...process.env };
    delete childEnv.NODE_TEST_CONTEXT;
    const r = await execa(process.execPath, ['--test', '--test-reporter=tap', 'conformance.test.js'], {
      cwd: pkg,
      env: childEnv,
      extendEnv: false,
      reject: false,
      timeout: 180_000,
    });
    const cases = [...r.stdout.matchAll(/^ {4}(ok|not ok) \d+ - (.+)$/gm)];
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok(cases.length >= 15, `${cases.length} cases ran:\n${r.stdout}`);
    assert.deepEqual(
      cases.filter((c) => c[1] !== 'ok').map((c) => c[2]),
      [],
    );
  });

  it("the step's DbflowError, imported from dbflow by the plugin, is a user error: its message, exit 1, no stack", async () => {
    writeFileSync(path.join(cwd, 'zero.yaml'), pipelineYaml('zero', 'flat://zero', 0));
    const r = await run(['run', 'zero.yaml']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout + r.stderr, /xor: key 0 would store the data as it is; choose a key from 1 to 255\./);
    assert.ok(!hasStackTrace(r.stdout + r.stderr), r.stdout + r.stderr);
    const logs = path.join(cwd, '.dbflow', 'runs', runIdOf(r.stdout), 'logs');
    for (const f of readdirSync(logs)) assert.ok(!hasStackTrace(readFileSync(path.join(logs, f), 'utf8')), `no stack in the step log ${f}`);
  });
});

describe('the plugin contract version', () => {
  const plugin = (contract: string | undefined): string =>
    `export default { name: 'future', ${contract === undefined ? '' : `contract: ${JSON.stringify(contract)}, `}steps: [] };\n`;

  for (const contract of ['3.0', '2.1', '1.2', '0.9']) {
    it(`a plugin written for contract ${contract} is refused, with what to do`, async (t) => {
      const dir = tmpDir(t);
      writeFileSync(path.join(dir, 'future.js'), plugin(contract));
      writeFileSync(path.join(dir, 'p.yaml'), 'version: 1\nname: future\nplugins:\n  - ./future.js\nsteps: []\n');
      const r = await dbflow(['validate', 'p.yaml'], { cwd: dir, env: { XDG_CONFIG_HOME: dir } });
      assert.equal(r.exitCode, 2);
      const advice = ['1.2', '0.9'].includes(contract)
        ? 'use a version of the plugin written for contract 2\\.x \\(this dbflow accepts 2\\.0, and 1\\.0 to 1\\.1 through an adapter\\)\\.'
        : `upgrade dbflow to one that implements contract ${contract.replace('.', '\\.')}, or use a version of the plugin written for contract 2\\.0 or older\\.`;
      assert.match(
        r.stderr,
        new RegExp(
          `p\\.yaml:4:5: plugin "future" \\(\\./future\\.js\\) was written for plugin contract ${contract.replace('.', '\\.')}, but this dbflow implements contract ${PLUGIN_CONTRACT.replace('.', '\\.')}: ${advice}`,
        ),
      );
      const flag = await dbflow(['plugins', '--plugin', './future.js'], { cwd: dir, env: { XDG_CONFIG_HOME: dir } });
      assert.equal(flag.exitCode, 2);
      assert.match(flag.stderr, /plugin "future" \(\.\/future\.js\) was written for plugin contract .* \(given in --plugin\)/);
      assert.ok(!hasStackTrace(flag.stderr), flag.stderr);
    });
  }

  it('a plugin that declares no contract is told to declare one', async (t) => {
    const dir = tmpDir(t);
    writeFileSync(path.join(dir, 'old.js'), plugin(undefined));
    writeFileSync(path.join(dir, 'p.yaml'), 'version: 1\nname: old\nplugins: [./old.js]\nsteps: []\n');
    const r = await dbflow(['validate', 'p.yaml'], { cwd: dir, env: { XDG_CONFIG_HOME: dir } });
    assert.equal(r.exitCode, 2);
    assert.match(
      r.stderr,
      new RegExp(
        `plugin "future" \\(\\./old\\.js\\) declares no plugin contract; declare the contract version the plugin was written for, e\\.g\\. contract: "${PLUGIN_CONTRACT.replace('.', '\\.')}"`,
      ),
    );
  });
});

describe('examples/plugin-hello copied out of the repository', () => {
  it('runs from its own folder and as an installed package, with no dbflow next to it', async (t) => {
    const dir = tmpDir(t);
    const copy = path.join(dir, 'node_modules', 'dbflow-plugin-hello');
    for (const f of ['index.ts', 'package.json', 'pipeline.yaml'])
      cpSync(path.join(repoRoot, 'examples', 'plugin-hello', f), path.join(copy, f));
    const own = await dbflow(['run', path.join(copy, 'pipeline.yaml')], { cwd: dir, env: { XDG_CONFIG_HOME: dir } });
    assert.equal(own.exitCode, 0, own.stderr);
    const pipeline = readFileSync(path.join(copy, 'pipeline.yaml'), 'utf8').replace('./index.ts', 'dbflow-plugin-hello');
    writeFileSync(path.join(dir, 'hello.yaml'), pipeline);
    const installed = await dbflow(['run', 'hello.yaml'], { cwd: dir, env: { XDG_CONFIG_HOME: dir } });
    assert.equal(installed.exitCode, 0, installed.stderr);
    assert.match(installed.stdout + installed.stderr, /Hello, world!/);
  });
});

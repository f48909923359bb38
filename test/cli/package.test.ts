// The npm package as a user installs it: packed, installed into a throwaway prefix with its runtime dependencies
// only, then run from an empty folder: --version, the quickstart, and `init` + `run` for each kind of database.
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { repoRoot } from '../helpers/cli.js';
import { requireMyBackupTools, requireMysql, scratchDatabase as myScratch } from '../helpers/mysql.js';
import { requireBackupTools, requirePostgres, scratchDatabase as pgScratch } from '../helpers/postgres.js';
import { tmpDir } from '../helpers/tmp.js';

const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

describe('the npm package', { concurrency: 3 }, () => {
  let prefix = '';
  let bin = '';
  let tarball = '';
  const run = (cwd: string, args: string[], env: Record<string, string> = {}) =>
    execa(bin, args, { cwd, reject: false, env: { NO_COLOR: '1', CI: 'true', DBFLOW_STATE_DIR: path.join(cwd, '.state'), ...env } });

  before(async () => {
    assert.ok(existsSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js')), 'dist/ is built (npm run build; `npm test` builds first)');
    const dir = tmpDir(undefined, 'dbflow-package-');
    // --ignore-scripts: `prepare` would build again; the test suite runs after a build.
    const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repoRoot });
    const filename = (JSON.parse(packed.stdout) as { filename: string }[])[0]?.filename;
    assert.ok(filename, packed.stdout);
    tarball = filename;
    prefix = path.join(dir, 'prefix');
    // Runtime dependencies only. Where no prebuilt binary can be fetched, better-sqlite3's install script compiles it
    // from source: two CPU-minutes that test npm and node-gyp, not dbflow. So the install scripts are left out and the
    // addon the checkout compiled (the same version, checked below) is put in its place; DBFLOW_TEST_PACKAGE_BUILD=1
    // runs the scripts instead.
    const compile = process.env.DBFLOW_TEST_PACKAGE_BUILD === '1';
    await execa(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        ...(compile ? [] : ['--ignore-scripts']),
        path.join(dir, filename),
      ],
      { env: { npm_config_update_notifier: 'false' } },
    );
    if (!compile) {
      const ours = path.join(repoRoot, 'node_modules', 'better-sqlite3');
      const theirs = path.join(prefix, 'lib', 'node_modules', 'dbflow', 'node_modules', 'better-sqlite3');
      const versionOf = (dir: string) => (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
      assert.equal(versionOf(theirs), versionOf(ours), 'the package installs the better-sqlite3 the checkout built');
      cpSync(path.join(ours, 'build', 'Release', 'better_sqlite3.node'), path.join(theirs, 'build', 'Release', 'better_sqlite3.node'));
    }
    bin = path.join(prefix, 'bin', 'dbflow');
  });

  test('holds what a user needs and nothing of the development tree', () => {
    const installed = path.join(prefix, 'lib', 'node_modules', 'dbflow');
    const top = readdirSync(installed).sort();
    for (const name of ['CHANGELOG.md', 'README.md', 'dist', 'package.json', 'pipelines', 'schemas'])
      assert.ok(top.includes(name), `${name} is in the package (${top.join(', ')})`);
    for (const name of ['test', 'scripts', 'src', '.ci', 'tsconfig.json']) assert.ok(!top.includes(name), `${name} is not in the package`);
    assert.deepEqual(
      readdirSync(path.join(installed, 'pipelines')).filter((f) => !/\.(ya?ml|passphrase)$/.test(f)),
      [],
      'no local backups or demo databases are packed',
    );
    const modules = readdirSync(path.join(installed, 'node_modules'));
    const { devDependencies } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: object };
    // Type packages may come with a runtime dependency's own (@types/node with ssh2's types): those are not looked for.
    for (const dev of Object.keys(devDependencies).filter((d) => !d.startsWith('@types/')))
      assert.ok(!existsSync(path.join(installed, 'node_modules', dev)), `development dependency ${dev} is not installed`);
    assert.ok(modules.includes('better-sqlite3') && modules.includes('openpgp'));
  });

  test('builds nothing when installed: no install script of its own, the code already compiled', () => {
    const installed = path.join(prefix, 'lib', 'node_modules', 'dbflow');
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    for (const script of ['preinstall', 'install', 'postinstall'])
      assert.equal(manifest.scripts?.[script], undefined, `the package has no ${script} script`);
    assert.ok(existsSync(path.join(installed, 'dist', 'src', 'cli', 'main.js')));
  });

  test('the README says how to install this tarball; the CHANGELOG has a section for this version', () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const install = /^## Install\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    assert.match(install, /^npm install && npm pack\b/m, 'the README says how to build the tarball');
    assert.ok(install.includes(`npm install -g ./${tarball}`), `the README installs ${tarball}:\n${install}`);
    const changelog = readFileSync(path.join(repoRoot, 'CHANGELOG.md'), 'utf8');
    assert.match(changelog, new RegExp(`^## \\[${version.replaceAll('.', '\\.')}\\] — \\d{4}-\\d{2}-\\d{2}$`, 'm'));
  });

  test('--version says the package version', async () => {
    const r = await run(tmpDir(), ['--version']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  });

  test('the quickstart runs from an empty folder, verified, and its manifest names the same version', async () => {
    const cwd = tmpDir();
    const r = await run(cwd, ['quickstart']);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /✔ quickstart: success/);
    assert.match(r.stdout, /verified {2}demo {2}rowcount: 3 tables, \d+ rows equal/);
    assert.equal(statSync(path.join(cwd, 'quickstart.passphrase')).mode & 0o777, 0o600);
    const manifest = /manifest {2}file:\/\/(\S+)/.exec(r.stdout)?.[1];
    assert.ok(manifest, r.stdout);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { status: string; tools: Record<string, string> };
    assert.equal(m.status, 'verified');
    assert.equal(m.tools.dbflow, version);
  });

  // `init` then `run`, unchanged, for each kind of database and for two together (one coordinated cut).
  const cases = [
    { name: 'postgres', pg: 1, my: 0, sq: 0 },
    { name: 'mysql', pg: 0, my: 1, sq: 0 },
    { name: 'sqlite', pg: 0, my: 0, sq: 1 },
    { name: 'postgres and mysql together', pg: 1, my: 1, sq: 0 },
  ];
  for (const c of cases) {
    test(`init --${c.name.replace(/ and /, ' --').replace(' together', '')} --to file://… then run: verified`, async (t) => {
      if (c.pg && !((await requirePostgres(t)) && (await requireBackupTools(t)))) return;
      if (c.my && !((await requireMysql(t)) && (await requireMyBackupTools(t)))) return;
      const cwd = tmpDir();
      const flags: string[] = [];
      const tables: string[] = [];
      if (c.sq) {
        const db = new Database(path.join(cwd, 'shop.sqlite3'));
        db.exec(
          'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) SELECT value FROM json_each(json_array(1, 2, 3, 4))',
        );
        db.close();
        flags.push('--sqlite', 'shop.sqlite3');
        tables.push('shop: 4');
      }
      if (c.pg) {
        const db = await pgScratch(t);
        await db.pool.query(
          'CREATE TABLE orders (id int PRIMARY KEY, total numeric); INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g',
        );
        flags.push('--postgres', db.url);
        tables.push(`${db.name}: 500`);
      }
      if (c.my) {
        const db = await myScratch(t);
        await db.pool.query('CREATE TABLE payments (id int PRIMARY KEY, amount decimal(10,2))');
        await db.pool.query('INSERT INTO payments SELECT seq, seq / 4 FROM seq_1_to_300');
        flags.push('--mysql', db.url);
        tables.push(`${db.name}: 300`);
      }
      const repo = path.join(tmpDir(), 'repo');
      const init = await run(cwd, [
        'init',
        ...flags,
        '--to',
        `file://${repo}`,
        '--name',
        'nightly',
        '--passphrase-file',
        'nightly.passphrase',
      ]);
      assert.equal(init.exitCode, 0, `${init.stdout}\n${init.stderr}`);
      assert.match(init.stdout, /^wrote nightly\.yaml/m);
      assert.match(init.stdout, /✔ repository file:\/\/.*: writable/);
      assert.equal(statSync(path.join(cwd, 'nightly.passphrase')).mode & 0o777, 0o600);
      const r = await run(cwd, ['run', 'nightly.yaml']);
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
      for (const table of tables) {
        const [name, rows] = table.split(': ');
        assert.match(r.stdout, new RegExp(`verified {2}${name} {2}rowcount: 1 tables, ${rows} rows equal`));
      }
      const manifest = JSON.parse(readFileSync(/manifest {2}file:\/\/(\S+)/.exec(r.stdout)![1]!, 'utf8')) as {
        status: string;
        coordination?: unknown;
      };
      assert.equal(manifest.status, 'verified');
      if (c.pg && c.my) assert.ok(manifest.coordination, 'two databases are taken at one coordinated cut');
    });
  }
});

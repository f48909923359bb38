// `dbflow init`, `run --dry-run` and `--quiet` through the CLI: flags, prompts at a terminal, bad and hostile input.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { randomBytes } from 'node:crypto';
import { MY_URL, requireMyBackupTools, requireMysql, scratchDatabase as myScratch, withConnection } from '../helpers/mysql.js';
import { requireBackupTools, requirePostgres, scratchDatabase, withClient, withPassword, PG_URL } from '../helpers/postgres.js';
import { dbflowAtTerminal } from '../helpers/pty.js';
import { quickstartCopy } from '../helpers/quickstart-copy.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { startSshd } from '../helpers/sshd.js';
import { createLiveDatabase } from '../helpers/sqlite-fixtures.js';
import { tmpDir } from '../helpers/tmp.js';

const both = (r: { stdout: string; stderr: string }): string => `${r.stdout}\n${r.stderr}`;

describe('dbflow init', { concurrency: 4 }, () => {
  test('without a database and without a terminal: a usage error naming the flags', async () => {
    const cwd = tmpDir();
    const r = await dbflow(['init'], { cwd });
    assert.equal(r.exitCode, 2, both(r));
    assert.match(r.stderr, /--postgres <url>, --mysql <url>, --sqlite <path>/);
    assert.deepEqual(readdirSync(cwd), [], 'nothing written');
  });

  for (const [what, args, message] of [
    ['a URL that is not one', ['--postgres', 'db.internal/app'], /--postgres "db\.internal\/app" is not a URL/],
    ['the wrong scheme', ['--mysql', 'postgres://h/app'], /must start with mysql:\/\/ or mariadb:\/\//],
    ['no database name', ['--postgres', 'postgres://backup@db.internal:5432/'], /names no database; add it to the path/],
    ['a bad schedule', ['--sqlite', 'x.sqlite3', '--schedule', 'every night'], /--schedule "every night" is not a cron expression/],
    ['a bad rpo', ['--sqlite', 'x.sqlite3', '--rpo', 'soon'], /--rpo must be a duration/],
    ['a bad name', ['--sqlite', 'x.sqlite3', '--name', '../etc'], /--name "\.\.\/etc" is not a pipeline name/],
    ['a repository that is no URL', ['--sqlite', 'x.sqlite3', '--to', '/var/backups'], /--to "\/var\/backups" is not a repository URL/],
    ['a template in a value', ['--postgres', 'postgres://h/{{ secrets.passphrase }}'], /"\{\{", which a pipeline reads as a template/],
  ] as const) {
    test(`${what}: exit 2, a clear message, nothing written`, async () => {
      const cwd = tmpDir();
      const r = await dbflow(['init', ...args, '--no-check'], { cwd });
      assert.equal(r.exitCode, 2, both(r));
      assert.match(r.stderr, message);
      assert.equal(hasStackTrace(both(r)), false, both(r));
      assert.deepEqual(readdirSync(cwd), []);
    });
  }

  test('refuses to replace a file unless --force', async () => {
    const cwd = tmpDir();
    writeFileSync(path.join(cwd, 'mine.yaml'), 'keep me\n');
    const r = await dbflow(['init', '--sqlite', 'x.sqlite3', '-o', 'mine.yaml', '--no-check'], { cwd });
    assert.equal(r.exitCode, 2, both(r));
    assert.match(r.stderr, /"mine\.yaml" exists; choose another --output or pass --force/);
    assert.equal(readFileSync(path.join(cwd, 'mine.yaml'), 'utf8'), 'keep me\n');
    const forced = await dbflow(['init', '--sqlite', 'x.sqlite3', '-o', 'mine.yaml', '--no-check', '--force'], { cwd });
    assert.equal(forced.exitCode, 0, both(forced));
    assert.match(readFileSync(path.join(cwd, 'mine.yaml'), 'utf8'), /^name: mine$/m);
  });

  test('a password in a URL goes to an environment variable, never into the file or the output', async () => {
    const cwd = tmpDir();
    const password = 'pw-0f1e2d3c-in-url';
    const r = await dbflow(
      [
        'init',
        '--postgres',
        `postgres://backup:${password}@db.internal:5432/app`,
        '--mysql',
        `mysql://backup:${password}@db2.internal/shop`,
        '--schedule',
        '15 3 * * 1-5',
        '--rpo',
        '3d',
        '--no-check',
      ],
      { cwd },
    );
    assert.equal(r.exitCode, 0, both(r));
    const yaml = readFileSync(path.join(cwd, 'app-shop-nightly.yaml'), 'utf8');
    for (const text of [yaml, r.stdout, r.stderr]) assert.ok(!text.includes(password), 'the password is not written or shown');
    assert.match(yaml, /^schedule: "15 3 \* \* 1-5"$/m);
    assert.match(yaml, /^rpo: 3d /m);
    assert.match(yaml, /app_password: \{ env: APP_DB_PASSWORD \}/);
    assert.match(
      yaml,
      /app: \{ driver: postgres, url: "postgres:\/\/backup@db\.internal:5432\/app", password: "\{\{ secrets\.app_password \}\}" \}/,
    );
    assert.match(r.stdout, /export APP_DB_PASSWORD/);
    assert.match(r.stdout, /export SHOP_DB_PASSWORD/);
    // Validates as written, given the variables it names.
    const v = await dbflow(['validate', 'app-shop-nightly.yaml'], {
      cwd,
      env: { APP_DB_PASSWORD: 'x', SHOP_DB_PASSWORD: 'y', DBFLOW_PASSPHRASE: 'z' },
    });
    assert.equal(v.exitCode, 0, both(v));
  });

  test('hostile database and file names are quoted: the pipeline validates and names them as given', async () => {
    const cwd = tmpDir();
    const r = await dbflow(
      [
        'init',
        '--postgres',
        'postgres://h/we%22ird%3A%20%7Bx%7D%20%23',
        '--sqlite',
        "it's: #[1].sqlite3",
        '--name',
        'hostile',
        '--no-check',
      ],
      { cwd },
    );
    assert.equal(r.exitCode, 0, both(r));
    const yaml = readFileSync(path.join(cwd, 'hostile.yaml'), 'utf8');
    assert.match(yaml, /we_ird___x___: \{ driver: postgres, url: "postgres:\/\/h\/we%22ird%3A%20%7Bx%7D%20%23" \}/);
    assert.match(yaml, /it_s____1_: \{ driver: sqlite, url: "sqlite:\.\/it's: #\[1\]\.sqlite3" \}/);
    const v = await dbflow(['validate', 'hostile.yaml'], { cwd, env: { DBFLOW_PASSPHRASE: 'z' } });
    assert.equal(v.exitCode, 0, both(v));
  });

  test('a backup user without grants: each missing grant is named, for both servers of a coordinated pipeline', async (t) => {
    if (!((await requirePostgres(t)) && (await requireMysql(t)))) return;
    const suffix = randomBytes(4).toString('hex');
    const role = `dbflow_test_init_${suffix}`;
    const pgDb = await scratchDatabase(t);
    await pgDb.pool.query('CREATE TABLE orders (id serial PRIMARY KEY, total numeric)');
    await withClient(PG_URL, (c) => c.query(`CREATE ROLE ${role} LOGIN`));
    t.after(() => withClient(PG_URL, (c) => c.query(`DROP ROLE IF EXISTS ${role}`)));
    const myDb = await myScratch(t);
    await myDb.pool.query('CREATE TABLE payments (id int PRIMARY KEY)');
    const password = `pw-${suffix}-init`;
    await withConnection(MY_URL, (c) => c.query('CREATE USER ?@? IDENTIFIED BY ?', [role, '%', password]));
    t.after(() => withConnection(MY_URL, (c) => c.query('DROP USER IF EXISTS ?@?', [role, '%'])));
    const pgUrl = new URL(pgDb.url);
    pgUrl.username = role;
    const myUrl = new URL(myDb.url);
    myUrl.username = role;
    myUrl.password = password;
    const cwd = tmpDir();
    const r = await dbflow(['init', '--postgres', pgUrl.href, '--mysql', myUrl.href, '--name', 'ungranted'], {
      cwd,
      env: { DBFLOW_PASSPHRASE: 'p' },
    });
    assert.equal(r.exitCode, 1, both(r));
    const escaped = myDb.name.replaceAll('_', '\\_'); // "_" is a wildcard in a GRANT's database name
    const grants = [
      `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role};`,
      `GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};`,
      `ALTER ROLE ${role} CREATEDB;`,
      `GRANT UPDATE ON ALL TABLES IN SCHEMA public TO ${role};`, // the coordinated cut's SHARE lock
      `GRANT RELOAD ON *.* TO '${role}'@'%';`,
      `GRANT BINLOG MONITOR ON *.* TO '${role}'@'%';`,
      `GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON \`${escaped}\`.* TO '${role}'@'%';`,
    ];
    for (const grant of grants) assert.ok(r.stderr.includes(grant), `names ${grant}:\n${r.stderr}`);
    assert.match(
      r.stderr,
      /✖ dbflow_test_\w+ \(PostgreSQL [\d.]+ as dbflow_test_init_\w+\): \d+ privileges missing; an administrator runs:/,
    );
    assert.match(r.stderr, /ungranted\.yaml is written; a run will fail until the problems above are fixed/);
    assert.ok(existsSync(path.join(cwd, 'ungranted.yaml')));
    assert.ok(!both(r).includes(password), 'the password is not shown');
    // The check init says to run again: the same grants, and nothing run.
    const dry = await dbflow(['run', 'ungranted.yaml', '--dry-run'], {
      cwd,
      env: { DBFLOW_PASSPHRASE: 'p', [`${myDb.name.toUpperCase()}_DB_PASSWORD`]: password },
    });
    assert.equal(dry.exitCode, 1, both(dry));
    for (const grant of grants) assert.ok(dry.stderr.includes(grant), `run --dry-run names ${grant}:\n${dry.stderr}`);
    assert.match(dry.stdout, /dry run: nothing was run; fix the problems above first/);
    assert.ok(!both(dry).includes(password), 'the password is not shown');
    assert.ok(!existsSync(path.join(cwd, '.dbflow', 'runs')), 'no run record');
  });

  test('SQLite files with server databases: the servers at one cut, each file on its own; the pipeline runs verified', async (t) => {
    if (!((await requirePostgres(t)) && (await requireBackupTools(t)) && (await requireMysql(t)) && (await requireMyBackupTools(t))))
      return;
    const pg = await scratchDatabase(t);
    await pg.pool.query('CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 40)');
    const my = await myScratch(t);
    await my.pool.query('CREATE TABLE payments (id int PRIMARY KEY)');
    await my.pool.query('INSERT INTO payments VALUES (1), (2), (3)');
    const cwd = tmpDir();
    createLiveDatabase(path.join(cwd, 'shop.sqlite3'), 30);
    createLiveDatabase(path.join(cwd, 'audit.sqlite3'), 20);
    const init = await dbflow(
      ['init', '--postgres', pg.url, '--mysql', my.url, '--sqlite', 'shop.sqlite3', '--sqlite', 'audit.sqlite3', '--name', 'mixed'],
      { cwd, env: { DBFLOW_PASSPHRASE: 'p-mixed' } },
    );
    assert.equal(init.exitCode, 0, both(init));
    const run = await dbflow(['run', 'mixed.yaml'], { cwd, env: { DBFLOW_PASSPHRASE: 'p-mixed' } });
    assert.equal(run.exitCode, 0, both(run));
    for (const name of [pg.name, my.name, 'shop', 'audit']) assert.match(run.stdout, new RegExp(`verified {2}${name} {2}rowcount: `));
    const manifest = JSON.parse(readFileSync(/manifest {2}file:\/\/(\S+)/.exec(run.stdout)![1]!, 'utf8')) as {
      status: string;
      coordination: { coordinated: boolean; participants: string[] }[];
    };
    assert.equal(manifest.status, 'verified');
    assert.deepEqual(
      manifest.coordination.map((c) => [c.coordinated, c.participants]).sort((a, b) => Number(b[0]) - Number(a[0])),
      [
        [true, [pg.name, my.name]],
        [false, ['shop', 'audit']],
      ],
      'the servers at one cut; the SQLite files apart',
    );
  });

  test('asks at a terminal, then writes a pipeline that runs unchanged', async () => {
    const cwd = tmpDir();
    createLiveDatabase(path.join(cwd, 'shop.sqlite3'), 200);
    const { child } = dbflowAtTerminal(['init'], { cwd, env: { DBFLOW_STATE_DIR: path.join(cwd, '.state') } });
    let screen = '';
    child.stdout.on('data', (b: Buffer) => (screen += b.toString()));
    const answer = async (prompt: RegExp, text: string): Promise<void> => {
      for (let waited = 0; !prompt.test(screen); waited += 20) {
        if (waited > 30_000 || child.exitCode !== null) assert.fail(`no prompt ${prompt}; terminal:\n${screen}`);
        await delay(20);
      }
      screen = screen.replace(prompt, '');
      child.stdin.write(`${text}\r`);
    };
    try {
      await answer(/database 1 \(postgres:\/\/…, mysql:\/\/…, sqlite:path; empty when done\): /, 'sqlite:./shop.sqlite3');
      await answer(/database 2 \(.*\): /, '');
      await answer(/pipeline name \[shop-nightly\]: /, 'shop');
      await answer(/repository \(.*\) \[file:\/\/\.\/backups\/shop\]: /, '');
      await answer(/schedule \(cron, UTC\) \[0 2 \* \* \*\]: /, '30 1 * * *');
      await answer(/recovery point objective .* \[26h\]: /, '12h');
      await answer(/passphrase file to create, mode 0600 .* \[shop\.passphrase\]: /, '');
      await answer(/pipeline file \[shop\.yaml\]: /, '');
      const r = await child;
      assert.equal(r.exitCode, 0, `terminal:\n${screen}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const yaml = readFileSync(path.join(cwd, 'shop.yaml'), 'utf8');
    assert.match(yaml, /^schedule: "30 1 \* \* \*"$/m);
    assert.match(yaml, /^rpo: 12h /m);
    assert.equal(statSync(path.join(cwd, 'shop.passphrase')).mode & 0o777, 0o600);
    const run = await dbflow(['run', 'shop.yaml'], { cwd });
    assert.equal(run.exitCode, 0, both(run));
    assert.match(run.stdout, /verified {2}shop {2}rowcount: \d+ tables, \d+ rows equal/);
  });
});

describe('dbflow run --dry-run', { concurrency: 4 }, () => {
  test('checks the database and the repository and runs nothing', async (t) => {
    if (!((await requirePostgres(t)) && (await requireBackupTools(t)))) return;
    const db = await scratchDatabase(t);
    await db.pool.query('CREATE TABLE t (id int PRIMARY KEY)');
    const cwd = tmpDir();
    const init = await dbflow(['init', '--postgres', db.url, '--name', 'dry', '--no-check'], { cwd });
    assert.equal(init.exitCode, 0, both(init));
    const r = await dbflow(['run', 'dry.yaml', '--dry-run'], { cwd, env: { DBFLOW_PASSPHRASE: 'dry-run-passphrase' } });
    assert.equal(r.exitCode, 0, both(r));
    assert.match(r.stdout, /✔ dry\.yaml: valid, \d+ steps/);
    assert.match(r.stdout, new RegExp(`✔ ${db.name} \\(PostgreSQL [\\d.]+.*\\): can be backed up and restore-tested`));
    assert.match(r.stdout, /✔ repository file:\/\/.*\/backups\/dry\/: writable/);
    assert.match(r.stdout, /dry run: nothing was run/);
    assert.ok(!existsSync(path.join(cwd, '.dbflow', 'runs')), 'no run record');
    assert.deepEqual(readdirSync(path.join(cwd, 'backups', 'dry')), [], 'the probe is gone; nothing stored');
  });

  test('a dead server and an unwritable repository: exit 1, each named, no stack, nothing run', async () => {
    const cwd = tmpDir();
    const file = path.join(cwd, 'dead.yaml');
    const init = await dbflow(
      [
        'init',
        '--postgres',
        withPassword('postgres://backup@127.0.0.1:1/app', 'pw-dead-77'),
        '--to',
        'file:///etc/hostname/backups',
        '--name',
        'dead',
      ],
      { cwd, env: { DBFLOW_PASSPHRASE: 'x-passphrase' } },
    );
    // init checks as the dry run does: the file is written, the problems named, exit 1.
    assert.equal(init.exitCode, 1, both(init));
    assert.match(init.stderr, /✖ app \(postgres, postgres:\/\/backup@127\.0\.0\.1:1\/app\): cannot connect: .*127\.0\.0\.1:1/);
    assert.match(init.stderr, /✖ repository file:\/\/\/etc\/hostname\/backups\/: not writable: /);
    assert.equal(hasStackTrace(both(init)), false, both(init));
    assert.ok(!both(init).includes('pw-dead-77'), 'the password is not shown');
    const r = await dbflow(['run', file, '--dry-run'], { cwd, env: { APP_DB_PASSWORD: 'pw-dead-77', DBFLOW_PASSPHRASE: 'x-passphrase' } });
    assert.equal(r.exitCode, 1, both(r));
    assert.match(r.stderr, /✖ app \(postgres, postgres:\/\/backup@127\.0\.0\.1:1\/app\): cannot connect: .*127\.0\.0\.1:1/);
    assert.match(r.stderr, /✖ repository file:\/\/\/etc\/hostname\/backups\/: not writable: /);
    assert.match(r.stdout, /fix the problems above first/);
    assert.equal(hasStackTrace(both(r)), false, both(r));
    assert.ok(!both(r).includes('pw-dead-77'), 'the password is not shown');
    assert.ok(!existsSync(path.join(cwd, '.dbflow', 'runs')));
  });

  test('an S3 repository: the probe is written and removed; a missing bucket is named', async (t) => {
    after(stopS3);
    const s3 = await requireS3(t);
    if (!s3) return;
    const bucket = await s3.bucket();
    const cwd = tmpDir();
    createLiveDatabase(path.join(cwd, 'x.sqlite3'), 10);
    const init = await dbflow(['init', '--sqlite', 'x.sqlite3', '--to', `s3://${bucket}/nightly`, '--name', 'ons3'], {
      cwd,
      env: { ...s3.env, DBFLOW_PASSPHRASE: 'p-s3' },
    });
    assert.equal(init.exitCode, 0, both(init));
    assert.match(init.stdout, new RegExp(`✔ repository s3://${bucket}/nightly/: writable`));
    assert.match(readFileSync(path.join(cwd, 'ons3.yaml'), 'utf8'), /# {3}AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION/);
    const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.equal(listed.KeyCount ?? 0, 0, 'nothing is left in the bucket');
    const missing = await dbflow(['init', '--sqlite', 'x.sqlite3', '--to', 's3://no-such-bucket-dbflow/nightly', '--name', 'nobucket'], {
      cwd,
      env: { ...s3.env, DBFLOW_PASSPHRASE: 'p-s3' },
    });
    assert.equal(missing.exitCode, 1, both(missing));
    assert.match(missing.stderr, /✖ repository s3:\/\/no-such-bucket-dbflow\/nightly\/: not writable: .*no-such-bucket-dbflow/);
  });

  test('an SFTP repository is checked with the key and known hosts a run uses', async (t) => {
    const sshd = await startSshd(t);
    if (!sshd) return;
    const cwd = tmpDir();
    createLiveDatabase(path.join(cwd, 'x.sqlite3'), 10);
    const to = sshd.url(`${path.join(tmpDir(), 'repo')}`);
    const r = await dbflow(['init', '--sqlite', 'x.sqlite3', '--to', to, '--name', 'onsftp'], {
      cwd,
      env: { ...sshd.env, DBFLOW_PASSPHRASE: 'p-sftp' },
    });
    assert.equal(r.exitCode, 0, both(r));
    assert.match(r.stdout, /✔ repository sftp:\/\/.*\/repo\/: writable/);
    const unknownHost = await dbflow(['run', 'onsftp.yaml', '--dry-run'], {
      cwd,
      env: { ...sshd.env, DBFLOW_SFTP_KNOWN_HOSTS: path.join(cwd, 'empty_known_hosts'), DBFLOW_PASSPHRASE: 'p-sftp' },
    });
    assert.equal(unknownHost.exitCode, 1, both(unknownHost));
    assert.match(unknownHost.stderr, /✖ repository sftp:\/\/.*: not writable: /);
  });

  test('a database whose driver cannot join a cut, in a coordinated snapshot: named, exit 1, nothing run', async () => {
    const cwd = tmpDir();
    createLiveDatabase(path.join(cwd, 'a.sqlite3'), 10);
    createLiveDatabase(path.join(cwd, 'b.sqlite3'), 10);
    const init = await dbflow(['init', '--sqlite', 'a.sqlite3', '--sqlite', 'b.sqlite3', '--name', 'cut', '--no-check'], { cwd });
    assert.equal(init.exitCode, 0, both(init));
    const file = path.join(cwd, 'cut.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(', coordinated: false', ''));
    const r = await dbflow(['run', 'cut.yaml', '--dry-run'], { cwd, env: { DBFLOW_PASSPHRASE: 'p-cut' } });
    assert.equal(r.exitCode, 1, both(r));
    for (const name of ['a', 'b'])
      assert.match(r.stderr, new RegExp(`✖ ${name} \\(sqlite, .*\\): cannot take part in a coordinated snapshot \\(one cut\\)`));
    assert.ok(!existsSync(path.join(cwd, '.dbflow', 'runs')));
  });

  test('a secret that cannot be read is the one problem reported', async () => {
    const cwd = tmpDir();
    const init = await dbflow(['init', '--sqlite', 'x.sqlite3', '--name', 'nokey', '--no-check'], { cwd });
    assert.equal(init.exitCode, 0, both(init));
    const r = await dbflow(['run', 'nokey.yaml', '--dry-run'], { cwd, env: { DBFLOW_PASSPHRASE: undefined } });
    assert.equal(r.exitCode, 2, both(r));
    assert.match(r.stderr, /DBFLOW_PASSPHRASE/);
  });
});

describe('--quiet', { concurrency: 4 }, () => {
  test('a successful run prints nothing at all', async () => {
    const cwd = tmpDir();
    const file = quickstartCopy(cwd);
    const r = await dbflow(['run', file, '--quiet'], { cwd });
    assert.equal(r.exitCode, 0, both(r));
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
    const before = await dbflow(['--quiet', 'backups', 'list', path.join(cwd, 'backups', 'quickstart')], { cwd });
    assert.equal(before.exitCode, 0, both(before));
    assert.equal(before.stdout + before.stderr, '', 'a global --quiet drops what a command lists');
    const dry = await dbflow(['run', file, '--dry-run', '--quiet'], { cwd });
    assert.equal(dry.exitCode, 0, both(dry));
    assert.equal(dry.stdout + dry.stderr, '', 'a dry run that finds nothing wrong prints nothing');
  });

  test('a failed run prints only the failure and its summary, on stderr', async () => {
    const cwd = tmpDir();
    mkdirSync(path.join(cwd, 'ro'));
    writeFileSync(path.join(cwd, 'ro', 'file'), '');
    const file = quickstartCopy(cwd, { repo: `file://${path.join(cwd, 'ro', 'file')}/sub` });
    const r = await dbflow(['-q', 'run', file], { cwd });
    assert.equal(r.exitCode, 1, both(r));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /upload\w*: FAILED after /);
    assert.match(r.stderr, /✖ quickstart: failed in /);
    assert.doesNotMatch(r.stderr, /: started$|: done in /m, 'no progress lines');
  });
});

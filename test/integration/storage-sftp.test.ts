// The SFTP storage against a real OpenSSH server started by the test, beyond the contract (which the conformance suite in
// test/conformance/storage-sftp.test.ts checks): files on the server, host-key checking, logins, dropped connections,
// a 100 MB stream in flat memory, and a whole pipeline through the CLI.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { execa } from 'execa';
import { builtinRegistry, DbflowError, RepositoryError, type Storage } from '../../src/index.js';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { descendants, freePort, waitFor } from '../helpers/processes.js';
import type { StreamReport } from '../helpers/sftp-stream.js';
import { keygen, setEnv, type Sshd, startSshd } from '../helpers/sshd.js';
import { readAll } from '../helpers/sqlite-fixtures.js';
import { requireTool } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

const signal = (): AbortSignal => new AbortController().signal;
const text = (s: string): Readable => Readable.from([Buffer.from(s)]);

/** The sftp storage as the registry serves it. */
async function sftpStorage(): Promise<Storage> {
  const storage = (await builtinRegistry()).storages.get('sftp');
  assert.ok(storage, 'the built-in registry has no sftp storage');
  return storage;
}

/** A private sshd, the environment pointed at it (no agent, no passphrase), and a local folder that the server writes into. */
async function server(t: TestContext): Promise<{ sshd: Sshd; storage: Storage; dir: string } | undefined> {
  const sshd = await startSshd(t);
  if (!sshd) return undefined;
  setEnv(t, { ...sshd.env, SSH_AUTH_SOCK: undefined, DBFLOW_SFTP_KEY_PASSPHRASE: undefined, DBFLOW_SFTP_CONNECT_TIMEOUT: undefined });
  return { sshd, storage: await sftpStorage(), dir: tmpDir(t, 'dbflow-sftp-') };
}

/** Every connection the storage opened has been closed (sshd serves each in its own process). */
async function allClosed(sshd: Sshd): Promise<void> {
  await waitFor('every SFTP connection to be closed', () => sshd.sessions() === 0, 10_000);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

void test('the file on the server is byte-exact and private; concurrent puts into one new folder; ~ paths; list keeps the spelling', async (t) => {
  const env = await server(t);
  if (!env) return;
  const { sshd, storage, dir } = env;

  const data = randomBytes(3 * 1024 * 1024 + 17);
  const chunks = Array.from({ length: 50 }, (_, i) =>
    data.subarray(Math.floor((i * data.length) / 50), Math.floor(((i + 1) * data.length) / 50)),
  );
  const url = sshd.url(`${dir}/run-1/app.sqlite3.zst`);
  assert.deepEqual(await storage.put(url, Readable.from(chunks), { signal: signal() }), { url, bytes: data.length });
  assert.ok((await readAll(await storage.get(url))).equals(data));
  assert.ok(readFileSync(path.join(dir, 'run-1', 'app.sqlite3.zst')).equals(data), 'the file on the server is byte-exact');
  assert.deepEqual(readdirSync(path.join(dir, 'run-1')), ['app.sqlite3.zst'], 'no temporary file is left');
  assert.equal(statSync(path.join(dir, 'run-1', 'app.sqlite3.zst')).mode & 0o777, 0o600);

  // Puts running at once into the same new folder all create it (or find it made).
  const together = Array.from({ length: 4 }, (_, i) => sshd.url(`${dir}/together/a/b/part-${i}`));
  await Promise.all(together.map((u, i) => storage.put(u, text(`part ${i}`), { signal: signal() })));
  assert.deepEqual(readdirSync(path.join(dir, 'together', 'a', 'b')).sort(), ['part-0', 'part-1', 'part-2', 'part-3']);

  // /~/ is the server's starting folder (the login's home on a stock server).
  const homeUrl = sshd.url('/~/nested/manifest.json');
  await storage.put(homeUrl, text('{"ok":true}\n'), { signal: signal() });
  assert.equal(readFileSync(path.join(sshd.home, 'nested', 'manifest.json'), 'utf8'), '{"ok":true}\n');
  assert.equal((await readAll(await storage.get(homeUrl))).toString(), '{"ok":true}\n');
  assert.deepEqual(await storage.list(sshd.url('/~/nested/')), [{ url: homeUrl, bytes: 12 }]);

  // list: the prefix's spelling kept, partials of puts that died and empty folders left out.
  const base = sshd.url(`${dir}/backups/nightly`);
  const objects = ['run-1/app.dump', 'run-1/manifest.json', 'run-2/app.dump', 'run-2/sub/deep.bin'];
  for (const o of objects) await storage.put(`${base}/${o}`, text(o), { signal: signal() });
  writeFileSync(path.join(dir, 'backups', 'nightly', 'run-2', '.app.dump.partial-0123456789ab'), 'half');
  mkdirSync(path.join(dir, 'backups', 'nightly', 'run-3'));
  assert.deepEqual(
    await storage.list(`${base}/`),
    objects.map((o) => ({ url: `${base}/${o}`, bytes: o.length })),
  );
  // Without user@, the local user logs in: the URLs keep the prefix's spelling.
  const noUser = `sftp://127.0.0.1:${sshd.port}${dir}/backups/nightly/run-2/`;
  assert.deepEqual(
    (await storage.list(noUser)).map((o) => o.url),
    [`${noUser}app.dump`, `${noUser}sub/deep.bin`],
  );

  // get of what is not there says where it looked.
  await storage.delete(`${base}/run-1/app.dump`);
  const missing = await rejection(storage.get(`${base}/run-1/app.dump`));
  assert.ok(missing instanceof RepositoryError, String(missing));
  assert.match(
    missing.message,
    /^object "sftp:\/\/.*\/run-1\/app\.dump" does not exist \(looked for .*\/run-1\/app\.dump on .*:\d+\); check the URL, or list the repository\.$/,
  );
  await assert.rejects(storage.get(`${base}/run-2`), /"sftp:.*\/run-2" is a folder, not an object; name a file in it\./);

  // A get whose stream is dropped half-way closes its connection too.
  await storage.put(url, Readable.from(chunks), { signal: signal() });
  const reading = await storage.get(url);
  await new Promise((resolve) => reading.once('data', resolve));
  reading.destroy();
  await allClosed(sshd);
});

void test('an abort while the body is quiet does not hang, one before the put makes no folder; a dropped connection fails at once', async (t) => {
  const env = await server(t);
  if (!env) return;
  const { sshd, storage, dir } = env;
  const folder = path.join(dir, 'out');
  const url = sshd.url(`${folder}/app.dump`);
  mkdirSync(folder);

  // Aborted while the body is still open and nothing more comes: the put does not hang.
  const stalled = new AbortController();
  const quiet = new PassThrough();
  const waiting = storage.put(sshd.url(`${folder}/quiet.dump`), quiet, { signal: stalled.signal });
  quiet.write(Buffer.from('a little'));
  await waitFor('the temporary file', () => readdirSync(folder).length > 0);
  stalled.abort();
  await assert.rejects(waiting, /aborted/);
  assert.deepEqual(readdirSync(folder), []);

  // Aborted before it started: not even the folder is made.
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(storage.put(sshd.url(`${dir}/other/x.dump`), text('x'), { signal: aborted.signal }));
  assert.equal(existsSync(path.join(dir, 'other')), false);

  // An object next to the put that will die.
  await storage.put(url, text('v1'), { signal: signal() });
  await allClosed(sshd);

  // The connection dies mid-put (sshd's session killed): the put fails at once and says why. Its
  // temporary file cannot be removed through a dead connection; list() does not show it.
  const dropping = new PassThrough();
  const dropped = storage.put(sshd.url(`${folder}/dropped.dump`), dropping, { signal: signal() });
  dropping.write(randomBytes(1024 * 1024));
  await waitFor('the temporary file to hold data', () =>
    readdirSync(folder).some((n) => n.startsWith('.dropped.dump.partial-') && statSync(path.join(folder, n)).size > 0),
  );
  for (const session of descendants(sshd.pid)) process.kill(session.pid, 'SIGKILL');
  const lost = await rejection(dropped);
  assert.ok(lost instanceof DbflowError, String(lost));
  assert.match(lost.message, /^writing "sftp:.*\/dropped\.dump" failed: the connection to the SFTP server was lost/);
  dropping.destroy();
  assert.deepEqual(
    (await storage.list(sshd.url(`${folder}/`))).map((o) => o.url),
    [url],
  );

  // The connection dies mid-get: the stream fails instead of hanging.
  writeFileSync(path.join(folder, 'big.bin'), randomBytes(20 * 1024 * 1024));
  const reading = await storage.get(sshd.url(`${folder}/big.bin`));
  await new Promise((resolve) => reading.once('data', resolve));
  reading.pause();
  for (const session of descendants(sshd.pid)) process.kill(session.pid, 'SIGKILL');
  await assert.rejects(readAll(reading), /^DbflowError: reading "sftp:.*\/big\.bin" failed: /);
});

void test('host keys: unknown, changed and revoked keys are refused with how to fix it; hashed and [host]:port entries work', async (t) => {
  const env = await server(t);
  if (!env) return;
  const { sshd, storage, dir } = env;
  const prefix = sshd.url(`${dir}/listed/`); // empty: a list that succeeds proves the connection was accepted
  const name = `[127.0.0.1]:${sshd.port}`;
  const fingerprint = (await execa('ssh-keygen', ['-lf', path.join(sshd.dir, 'host_ed25519.pub')])).stdout.split(' ')[1]!;
  const knownHosts = (file: string, content: string): string => {
    writeFileSync(file, content);
    process.env.DBFLOW_SFTP_KNOWN_HOSTS = file;
    return file;
  };

  // Unknown: a known_hosts file without the server, and one that has it only for another port.
  for (const content of ['', `127.0.0.1 ${sshd.hostKey}\n[127.0.0.1]:1 ${sshd.hostKey}\n`]) {
    const file = knownHosts(path.join(dir, 'known_hosts'), content);
    const err = await rejection(storage.list(prefix));
    assert.ok(err instanceof DbflowError, String(err));
    assert.ok(
      err.message.startsWith(
        `the SSH host key of ${name} (ssh-ed25519 key ${fingerprint}) is not in ${file}; dbflow does not connect to unknown servers.`,
      ),
      err.message,
    );
    assert.ok(err.message.includes(`add its key: ssh-keyscan -p ${sshd.port} 127.0.0.1 >> ${file}`), err.message);
  }
  // The command the message gives works as given.
  const missingKey = await rejection(storage.list(prefix));
  const command = /add its key: (ssh-keyscan [^(]+?) \(/.exec(missingKey.message)?.[1];
  assert.ok(command, missingKey.message);
  await execa('sh', ['-c', command]);
  assert.deepEqual(await storage.list(prefix), []);

  // A known_hosts file that does not exist says so.
  process.env.DBFLOW_SFTP_KNOWN_HOSTS = path.join(dir, 'nowhere', 'known_hosts');
  assert.match((await rejection(storage.list(prefix))).message, /is not in .*\/nowhere\/known_hosts \(does not exist\);/);

  // Changed: another key of the same type is recorded for the server.
  const other = await keygen(path.join(dir, 'other_host_key'), 'other');
  const otherKey = readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  const changedFile = knownHosts(path.join(dir, 'known_hosts_changed'), `# a comment\n\n${name} ${otherKey}\n`);
  const changed = await rejection(storage.put(sshd.url(`${dir}/x`), text('x'), { signal: signal() }));
  assert.ok(changed instanceof DbflowError);
  assert.ok(
    changed.message.startsWith(
      `the SSH host key of ${name} has changed: the server presented the ssh-ed25519 key ${fingerprint}, which does not match ${changedFile}:3.`,
    ),
    changed.message,
  );
  assert.ok(changed.message.includes(`ssh-keygen -R '${name}' -f ${changedFile}`), changed.message);
  assert.equal(existsSync(path.join(dir, 'x')), false);

  // Revoked, even when a plain entry trusts the same key.
  knownHosts(path.join(dir, 'known_hosts_revoked'), `${name} ${sshd.hostKey}\n@revoked ${name} ${sshd.hostKey}\n`);
  assert.match((await rejection(storage.list(prefix))).message, /is marked @revoked in .*known_hosts_revoked:2; refusing to connect\.$/);

  // Hashed entries (ssh-keygen -H), wildcard and negated patterns are understood.
  const hashed = knownHosts(path.join(dir, 'known_hosts_hashed'), `${name} ${sshd.hostKey}\n`);
  await execa('ssh-keygen', ['-H', '-f', hashed]);
  assert.match(readFileSync(hashed, 'utf8'), /^\|1\|[^ ]+ ssh-ed25519 /);
  assert.deepEqual(await storage.list(prefix), []);
  knownHosts(path.join(dir, 'known_hosts_wild'), `[127.0.0.*]:${sshd.port},!10.0.0.1 ${sshd.hostKey}\n`);
  assert.deepEqual(await storage.list(prefix), []);
  knownHosts(path.join(dir, 'known_hosts_negated'), `[127.0.0.*]:${sshd.port},![127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
  assert.match((await rejection(storage.list(prefix))).message, /is not in/);
  await allClosed(sshd);
});

void test('logins: key file, encrypted key, ssh-agent, default keys; refused logins, dead ports and silent servers say what to do', async (t) => {
  const env = await server(t);
  if (!env) return;
  const { sshd, storage, dir } = env;
  const prefix = sshd.url(`${dir}/listed/`); // empty: a list that succeeds proves the connection was accepted
  const emptyHome = tmpDir(t, 'dbflow-sftp-home-');
  setEnv(t, { HOME: emptyHome });

  // A key the server does not accept.
  const stranger = await keygen(path.join(dir, 'stranger'), 'stranger');
  process.env.DBFLOW_SFTP_KEY = stranger;
  const refused = await rejection(storage.list(prefix));
  assert.ok(refused instanceof DbflowError);
  assert.equal(
    refused.message,
    `the SFTP server ${sshd.user}@127.0.0.1:${sshd.port} refused the login of "${sshd.user}" with the key ${stranger} (DBFLOW_SFTP_KEY); add the public key to ~${sshd.user}/.ssh/authorized_keys on the server, or set DBFLOW_SFTP_KEY to a key that it accepts.`,
  );

  // An encrypted key: without its passphrase, with a wrong one, with the right one. The passphrase never shows.
  const secret = 'correct horse battery staple';
  const locked = await keygen(path.join(dir, 'locked'), 'locked', secret);
  writeFileSync(path.join(sshd.dir, 'authorized_keys'), `${sshd.userPub}\n${readFileSync(`${locked}.pub`, 'utf8')}`);
  process.env.DBFLOW_SFTP_KEY = locked;
  assert.equal(
    (await rejection(storage.list(prefix))).message,
    `the SSH key "${locked}" named by DBFLOW_SFTP_KEY is encrypted; set DBFLOW_SFTP_KEY_PASSPHRASE to its passphrase.`,
  );
  process.env.DBFLOW_SFTP_KEY_PASSPHRASE = 'wrong passphrase';
  const wrong = await rejection(storage.list(prefix));
  assert.match(wrong.message, /^the SSH key ".*locked" named by DBFLOW_SFTP_KEY cannot be used \(.+\); check DBFLOW_SFTP_KEY_PASSPHRASE/);
  assert.ok(!wrong.message.includes('wrong passphrase'));
  process.env.DBFLOW_SFTP_KEY_PASSPHRASE = secret;
  assert.deepEqual(await storage.list(prefix), []);
  delete process.env.DBFLOW_SFTP_KEY_PASSPHRASE;

  process.env.DBFLOW_SFTP_KEY = path.join(dir, 'no-such-key');
  assert.match(
    (await rejection(storage.list(prefix))).message,
    /^cannot read the SSH key ".*no-such-key" named by DBFLOW_SFTP_KEY \(ENOENT\)/,
  );

  // No key at all: no DBFLOW_SFTP_KEY, no agent, nothing in ~/.ssh.
  delete process.env.DBFLOW_SFTP_KEY;
  assert.equal(
    (await rejection(storage.list(prefix))).message,
    `no SSH key to log in as "${sshd.user}" with: set DBFLOW_SFTP_KEY to a private key file, start ssh-agent with the key added (SSH_AUTH_SOCK), or create ${emptyHome}/.ssh/id_ed25519.`,
  );

  // ssh-agent holding the key.
  const agentSocket = path.join(dir, 'agent.sock');
  const agent = execa('ssh-agent', ['-D', '-a', agentSocket], { reject: false });
  t.after(async () => {
    agent.kill('SIGTERM');
    await agent;
  });
  // The socket exists once bound, a moment before the agent listens: ssh-add -l exits 2 until it can connect.
  await waitFor(
    'ssh-agent to listen',
    async () => (await execa('ssh-add', ['-l'], { env: { SSH_AUTH_SOCK: agentSocket }, reject: false })).exitCode !== 2,
  );
  await execa('ssh-add', ['-q', sshd.userKey], { env: { SSH_AUTH_SOCK: agentSocket } });
  process.env.SSH_AUTH_SOCK = agentSocket;
  assert.deepEqual(await storage.list(prefix), []);
  delete process.env.SSH_AUTH_SOCK;

  // The default key ~/.ssh/id_ed25519.
  mkdirSync(path.join(emptyHome, '.ssh'));
  copyFileSync(sshd.userKey, path.join(emptyHome, '.ssh', 'id_ed25519'));
  assert.deepEqual(await storage.list(prefix), []);
  process.env.DBFLOW_SFTP_KEY = sshd.userKey;

  // Nothing listens on the port.
  const deadPort = await freePort();
  assert.equal(
    (await rejection(storage.list(`sftp://${sshd.user}@127.0.0.1:${deadPort}/x/`))).message,
    `cannot connect to 127.0.0.1:${deadPort}: connection refused; check the host and port of "sftp://${sshd.user}@127.0.0.1:${deadPort}", and that an SSH server listens there.`,
  );

  // A server that accepts the connection and never speaks: the connect timeout ends it.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const silentPort = (silent.address() as net.AddressInfo).port;
  process.env.DBFLOW_SFTP_CONNECT_TIMEOUT = '0.5';
  const started = performance.now();
  const timedOut = await rejection(storage.list(`sftp://${sshd.user}@127.0.0.1:${silentPort}/x/`));
  assert.ok(performance.now() - started < 5000, 'the timeout applies');
  assert.equal(
    timedOut.message,
    `no SSH handshake with 127.0.0.1:${silentPort} within 0.5 s; check that "sftp://${sshd.user}@127.0.0.1:${silentPort}" names an SSH server that answers from here (storage.sftp.connect_timeout or DBFLOW_SFTP_CONNECT_TIMEOUT sets the limit, in seconds).`,
  );
  delete process.env.DBFLOW_SFTP_CONNECT_TIMEOUT;

  // URLs: a password is refused without being repeated; other shapes get the form to write.
  const withPassword = await rejection(storage.list(`sftp://${sshd.user}:hunter2@127.0.0.1:${sshd.port}/x/`));
  assert.ok(!withPassword.message.includes('hunter2'), withPassword.message);
  assert.match(
    withPassword.message,
    /^"sftp:\/\/\w+:\*\*\*@127\.0\.0\.1:\d+\/x\/" holds a password; dbflow logs in to SFTP servers with keys only/,
  );
  for (const bad of ['sftp://host', 'sftp://host:99999/x', 'sftp:relative/x', 'sftp:///x', 's3://bucket/x']) {
    await assert.rejects(storage.get(bad), (err: Error) => {
      assert.ok(err instanceof DbflowError);
      assert.ok(err.message.includes(`"${bad}" is not an SFTP storage URL; write sftp://user@host[:port]/absolute/path`), err.message);
      return true;
    });
  }
  await assert.rejects(storage.put(sshd.url(`${dir}/folder/`), Readable.from([]), { signal: signal() }), /names a folder, not an object/);
  await assert.rejects(storage.put(sshd.url('/~'), Readable.from([]), { signal: signal() }), /names a folder, not an object/);
  await allClosed(sshd);
});

void test('a 100 MB stream goes up and comes back byte-exact, in bounded memory (measured in a child process)', async (t) => {
  const env = await server(t);
  if (!env) return;
  const { sshd, dir } = env;
  const bytes = 100 * 1024 * 1024;
  const url = sshd.url(`${dir}/big/stream.bin`);
  const child = await execa(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), path.join(repoRoot, 'test', 'helpers', 'sftp-stream.ts'), url, String(bytes)],
    {
      env: sshd.env,
      reject: false,
    },
  );
  assert.equal(child.exitCode, 0, child.stderr);
  const r = JSON.parse(child.stdout) as StreamReport;
  const growth = r.peakRss - r.baseRss;
  const mbps = (ms: number): string => (bytes / 1e6 / (ms / 1000)).toFixed(1);
  t.diagnostic(
    `100 MiB: put ${r.putMs} ms (${mbps(r.putMs)} MB/s, ${r.putCpuMs} ms CPU), get ${r.getMs} ms (${mbps(r.getMs)} MB/s, ${r.getCpuMs} ms CPU); ` +
      `RSS ${(r.baseRss / 2 ** 20).toFixed(0)} MiB after warm-up, peak +${(growth / 2 ** 20).toFixed(1)} MiB (VmHWM ${(r.vmHwm / 2 ** 20).toFixed(0)} MiB)`,
  );
  assert.equal(r.gotBytes, bytes);
  assert.equal(r.gotSha256, r.sentSha256, 'get returns what put sent');
  assert.equal(sha256(path.join(dir, 'big', 'stream.bin')), r.sentSha256, 'the file on the server is what put sent');
  assert.ok(growth < 80 * 2 ** 20, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB for a 100 MiB stream`);
  assert.deepEqual(readdirSync(path.join(dir, 'big')), ['stream.bin']);
  await allClosed(sshd);
});

void test('a whole pipeline through the CLI uploads to sftp://, publishes its manifest there and restore-tests the download', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const sshd = await startSshd(t);
  if (!sshd) return;
  const repo = tmpDir(t, 'dbflow-sftp-repo-');
  const cwd = tmpDir(t);
  const source = readFileSync(path.join(repoRoot, 'pipelines', 'quickstart.yaml'), 'utf8');
  const pipeline = source.replace(
    /^ {2}repo: file:\/\/\.\/backups\/\{\{ pipeline\.name \}\}$/m,
    `  repo: ${sshd.url(`${repo}/{{ pipeline.name }}`)}`,
  );
  assert.notEqual(pipeline, source, 'the quickstart still has its repo line');
  writeFileSync(path.join(cwd, 'quickstart.yaml'), pipeline);
  copyFileSync(path.join(repoRoot, 'pipelines', 'quickstart.passphrase'), path.join(cwd, 'quickstart.passphrase'));

  // The defaults, as an operator would have them: ~/.ssh/id_ed25519 and a hashed ~/.ssh/known_hosts.
  const home = tmpDir(t, 'dbflow-sftp-home-');
  mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  copyFileSync(sshd.userKey, path.join(home, '.ssh', 'id_ed25519'));
  copyFileSync(sshd.knownHosts, path.join(home, '.ssh', 'known_hosts'));
  await execa('ssh-keygen', ['-H', '-f', path.join(home, '.ssh', 'known_hosts')]);

  const run = await dbflow(['run', 'quickstart.yaml'], {
    cwd,
    env: {
      HOME: home,
      DBFLOW_SFTP_KEY: undefined,
      DBFLOW_SFTP_KEY_PASSPHRASE: undefined,
      DBFLOW_SFTP_KNOWN_HOSTS: undefined,
      SSH_AUTH_SOCK: undefined,
    },
  });
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /✔ quickstart: success/);
  assert.match(run.stdout, /verified {2}demo {2}restore: /);
  assert.match(run.stdout, /verified {2}demo {2}rowcount: 3 tables, \d+ rows equal/);
  const artifactUrl = /artifact {2}demo {2}(\S+)/.exec(run.stdout)?.[1];
  const manifestUrl = /manifest {2}(\S+)/.exec(run.stdout)?.[1];
  const origin = sshd.url('');
  assert.ok(artifactUrl && manifestUrl, run.stdout);
  assert.ok(artifactUrl.startsWith(`${origin}${repo}/quickstart/`), run.stdout);
  assert.ok(manifestUrl.startsWith(`${origin}${repo}/quickstart/`), run.stdout);

  // On the server: the manifest next to the artifact, nothing else, and the manifest describes it.
  const artifact = artifactUrl.slice(origin.length);
  const manifestFile = manifestUrl.slice(origin.length);
  assert.equal(path.dirname(manifestFile), path.dirname(artifact));
  assert.deepEqual(readdirSync(path.dirname(artifact)).sort(), [path.basename(artifact), 'manifest.json'].sort());
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
    status: string;
    artifacts: { url: string; path: string; sha256: string; bytes: number }[];
    verification: { check: string; ok: boolean }[];
  };
  assert.equal(manifest.status, 'verified');
  assert.equal(manifest.artifacts[0]?.url, artifactUrl);
  assert.equal(manifest.artifacts[0]?.path, path.basename(artifact));
  assert.equal(manifest.artifacts[0]?.sha256, sha256(artifact));
  assert.equal(manifest.artifacts[0]?.bytes, statSync(artifact).size);
  assert.ok(manifest.verification.length >= 2 && manifest.verification.every((v) => v.ok), JSON.stringify(manifest.verification));
  assert.doesNotMatch(run.stdout + run.stderr, /dbflow-quickstart-demo-passphrase/);
  // "Restore without dbflow": the summary's stock command starts with a stock download that works as printed.
  const stock = /^\s+(ssh -p .*)$/m.exec(run.stdout)?.[1];
  assert.ok(stock, `a stock restore command that downloads with ssh:\n${run.stdout}`);
  // ssh finds ~/.ssh through the passwd entry, not $HOME: the test's key and known_hosts are named explicitly.
  const download = stock
    .split(' | ')[0]!
    .replace(
      'ssh -p',
      `ssh -o BatchMode=yes -i ${path.join(home, '.ssh', 'id_ed25519')} -o UserKnownHostsFile=${path.join(home, '.ssh', 'known_hosts')} -p`,
    );
  const fetched = await execa('bash', ['-o', 'pipefail', '-c', `${download} | sha256sum`], { env: { HOME: home } });
  assert.equal(fetched.stdout.split(' ')[0], manifest.artifacts[0]?.sha256, `${download} reads the artifact`);
  await allClosed(sshd);
});

// The SFTP storage on the storage conformance suite, against a throwaway OpenSSH server (one for the file).
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { after, type TestContext } from 'node:test';
import sftpPlugin from '../../plugins/storage-sftp/index.js';
import { describeStorage } from '../../src/testing/index.js';
import { requireOpenssh, setEnv, startSshd, type Sshd } from '../helpers/sshd.js';

const storage = sftpPlugin.storages!.find((s) => s.scheme === 'sftp')!;
const stops: (() => void | Promise<void>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});
let shared: Promise<Sshd | undefined> | undefined;

// The file's sshd, started on first use and stopped after the last test.
async function sshd(t: TestContext): Promise<Sshd | undefined> {
  if (!requireOpenssh(t)) return undefined;
  shared ??= startSshd({ after: (fn) => void stops.push(fn as () => Promise<void>), skip: (m) => t.skip(m) });
  return shared;
}

describeStorage('storage-sftp (OpenSSH, absolute paths)', async (t) => {
  const server = await sshd(t);
  if (!server) return undefined;
  setEnv(t, { ...server.env, SSH_AUTH_SOCK: undefined, DBFLOW_SFTP_KEY_PASSPHRASE: undefined, DBFLOW_SFTP_CONNECT_TIMEOUT: undefined });
  const dir = mkdtempSync(path.join(server.home, 'abs-'));
  return { storage, prefix: server.url(`${dir}/`) };
});

describeStorage('storage-sftp (OpenSSH, /~/ paths under the login folder)', async (t) => {
  const server = await sshd(t);
  if (!server) return undefined;
  setEnv(t, { ...server.env, SSH_AUTH_SOCK: undefined, DBFLOW_SFTP_KEY_PASSPHRASE: undefined, DBFLOW_SFTP_CONNECT_TIMEOUT: undefined });
  const dir = path.basename(mkdtempSync(path.join(server.home, 'home-')));
  return { storage, prefix: server.url(`/~/${dir}/`) };
});

// Stock gpg in a throwaway GNUPGHOME: run it, give it a passphrase file, make it a key pair.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { execa } from 'execa';

/** A GNUPGHOME and a way to run gpg in it (batch, no tty, quiet). */
export interface GpgHome {
  home: string;
  gpg: (args: string[], input: Buffer) => Promise<Buffer>;
}

// A throwaway GNUPGHOME (agent stopped and folder removed after the test) and a way to run gpg in it.
export async function gpgHome(t: TestContext): Promise<GpgHome> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'dbflow-gpg-'));
  await chmod(home, 0o700);
  const env = { GNUPGHOME: home };
  t.after(async () => {
    await execa('gpgconf', ['--kill', 'gpg-agent'], { env, reject: false });
    await rm(home, { recursive: true, force: true });
  });
  return {
    home,
    gpg: async (args, input) => {
      // Binary output whole: execa strips a final newline byte by default, also from a buffer.
      const res = await execa('gpg', ['--batch', '--no-tty', '--quiet', ...args], {
        env,
        input,
        encoding: 'buffer',
        stripFinalNewline: false,
      });
      return Buffer.from(res.stdout);
    },
  };
}

// The passphrase in a 0600 file inside `home`, for --passphrase-file (never in argv).
export async function passphraseFile(home: string, passphrase: string): Promise<string> {
  const file = path.join(home, 'passphrase');
  await writeFile(file, passphrase, { mode: 0o600 });
  return file;
}

// A key pair made by gpg itself (ed25519 with a cv25519 encryption subkey, no passphrase), exported armored.
export async function gpgKeyPair({ gpg }: GpgHome, email: string): Promise<{ publicKey: string; privateKey: string; fingerprint: string }> {
  const none = ['--pinentry-mode', 'loopback', '--passphrase', ''];
  await gpg([...none, '--quick-generate-key', `dbflow test <${email}>`, 'future-default', 'default', 'never'], Buffer.alloc(0));
  const listed = (await gpg(['--with-colons', '--list-secret-keys', email], Buffer.alloc(0))).toString();
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listed)![1]!;
  const publicKey = (await gpg(['--export', '--armor', fingerprint], Buffer.alloc(0))).toString();
  const privateKey = (await gpg([...none, '--export-secret-keys', '--armor', fingerprint], Buffer.alloc(0))).toString();
  return { publicKey, privateKey, fingerprint };
}

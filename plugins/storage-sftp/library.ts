// ssh2-sftp-client (and the ssh2 it is built on), loaded on first use: `dbflow validate` never pays for them.
import { createRequire } from 'node:module';
import type * as Ssh2 from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';

/** What this storage uses of the two packages. */
export interface SshLibrary {
  SftpClient: typeof SftpClient;
  parseKey: typeof Ssh2.utils.parseKey;
}

let loaded: Promise<SshLibrary> | undefined;

/** The packages, imported once. */
export function sshLibrary(): Promise<SshLibrary> {
  loaded ??= (async () => {
    const { default: Client } = await import('ssh2-sftp-client');
    // ssh2 exactly as ssh2-sftp-client resolves it: the one its connections run on.
    const fromClient = createRequire(createRequire(import.meta.url).resolve('ssh2-sftp-client'));
    const ssh2 = fromClient('ssh2') as typeof Ssh2;
    return { SftpClient: Client, parseKey: ssh2.utils.parseKey };
  })();
  return loaded;
}

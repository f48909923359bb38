// Keeping the comparison honest: each side's artifact decrypts with stock gpg and decompresses with
// stock zstd into a dump of the bench database, and dbflow's backup passes `dbflow verify`.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { CLI, runOk } from './util.js';

/** What `gpg -d | zstd -d` made of an artifact. */
export interface Decoded {
  bytes: number;
  sha256: string;
  /** The first 64 KiB and the last 4 KiB, as latin1 text. */
  head: string;
  tail: string;
}

const HEAD = 64 * 1024;
const TAIL = 4 * 1024;

/** Decrypts and decompresses `artifact` with the stock tools; the dump is hashed as it streams, never stored. */
export function stockDecode(artifact: string, passFile: string, gnupgHome: string): Promise<Decoded> {
  const script = 'set -o pipefail; gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$PASS" -d "$OUT" | zstd -d -q -c';
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], {
      env: { ...process.env, PASS: passFile, OUT: artifact, GNUPGHOME: gnupgHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const hash = createHash('sha256');
    let bytes = 0;
    let head = Buffer.alloc(0);
    let tail = Buffer.alloc(0);
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => {
      hash.update(b);
      bytes += b.length;
      if (head.length < HEAD) head = Buffer.concat([head, b.subarray(0, HEAD - head.length)]);
      tail = Buffer.concat([tail, b]).subarray(-TAIL);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0)
        reject(new Error(`gpg -d | zstd -d of ${artifact} exited ${code}: ${Buffer.concat(err).toString().trim().slice(-500)}`));
      else resolve({ bytes, sha256: hash.digest('hex'), head: head.toString('latin1'), tail: tail.toString('latin1') });
    });
  });
}

/**
 * Checks one side's artifact: it decodes with stock tools, `looksRight` accepts the dump (names the
 * bench database, is complete), and for dbflow its size is what went through the dump edge.
 * Returns a problem, or undefined.
 */
export async function checkArtifact(o: {
  side: string;
  artifact: string;
  passFile: string;
  gnupgHome: string;
  /** A problem with the decoded dump, or undefined. */
  looksRight: (d: Decoded) => string | undefined;
  dumpEdgeBytes?: number;
  log: (s: string) => void;
}): Promise<string | undefined> {
  let d: Decoded;
  try {
    d = await stockDecode(o.artifact, o.passFile, o.gnupgHome);
  } catch (err) {
    return `${o.side}'s artifact does not decode with stock tools: ${(err as Error).message}`;
  }
  const wrong = o.looksRight(d);
  if (wrong) return `${o.side}'s artifact decodes, but ${wrong}`;
  if (o.dumpEdgeBytes !== undefined && d.bytes !== o.dumpEdgeBytes)
    return `${o.side}'s artifact decodes to ${d.bytes} bytes, but ${o.dumpEdgeBytes} went through its dump edge`;
  o.log(
    `  check: ${o.side}'s artifact decodes with gpg -d | zstd -d to a ${d.bytes}-byte dump of the bench database (sha256 ${d.sha256.slice(0, 12)}…)`,
  );
  return undefined;
}

/** `dbflow verify` of a stored backup (its folder): every object's size and sha256, every layer's check. */
export async function verifyBackup(o: {
  runDir: string;
  passFile: string;
  stateDir: string;
  log: (s: string) => void;
}): Promise<string | undefined> {
  const { log } = o;
  try {
    await runOk(process.execPath, [CLI, 'verify', o.runDir, '--passphrase-file', o.passFile, '--no-record', '--state-dir', o.stateDir]);
    log(`  check: dbflow verify passes on dbflow's backup`);
    return undefined;
  } catch (err) {
    return `dbflow verify of dbflow's backup failed: ${(err as Error).message}`;
  }
}

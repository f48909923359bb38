// A StepContext (dbflow/testing's) for calling a plugin step's run(ctx) directly in tests, and inputs for it.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { builtinRegistry, type DatabaseConfig, type StepContext, type StepDefinition, type TableCounts } from '../../src/index.js';
import { testContext } from '../../src/testing/index.js';

/** What a test sets; everything else gets a neutral value. */
export interface StepContextOptions<W> {
  with: W;
  input?: Readable;
  signal?: AbortSignal;
  /** Extra environment of every program the step runs (e.g. a PATH without zstd). */
  env?: Record<string, string>;
  id?: string;
}

/** The context, what the step logged, and a dispose() that removes its tmpdir. */
export interface TestStepContext<W> {
  ctx: StepContext<W>;
  logs: string[];
  dispose: () => Promise<void>;
}

// dbflow/testing's context (programs run as in a run: the minimal environment, killed on the signal, stderr logged).
export function stepContext<W>(options: StepContextOptions<W>): Promise<TestStepContext<W>> {
  const { ctx, logs, dispose } = testContext<W>({
    with: options.with,
    id: options.id ?? 'step',
    ...(options.input && { input: options.input }),
    ...(options.signal && { signal: options.signal }),
    ...(options.env && { env: options.env }),
  });
  return Promise.resolve({ ctx, logs, dispose: () => Promise.resolve(dispose()) });
}

/** A stream of `bytes` random bytes in `chunk`-sized pieces, and the sha256 of what it produced. */
export interface RandomInput {
  stream: Readable;
  sha256: Promise<string>;
}

// Random bytes generated as they are read, so that the test itself holds no copy of the data.
export function randomInput(bytes: number, chunk = 64 * 1024): RandomInput {
  const hash = createHash('sha256');
  let sent = 0;
  let resolve!: (digest: string) => void;
  const sha256 = new Promise<string>((r) => (resolve = r));
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      if (sent >= bytes) {
        resolve(hash.digest('hex'));
        this.push(null);
        return;
      }
      const piece = randomBytes(Math.min(chunk, bytes - sent));
      sent += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
  return { stream, sha256 };
}

// The sha256 (hex) and byte count of everything a stream produces.
export async function digest(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  return { sha256: hash.digest('hex'), bytes };
}

// Fails (under CI=true) or skips a test when a program is missing, naming the Debian package.
export async function requireTool(t: { skip(message: string): void }, program: string, debianPackage: string): Promise<boolean> {
  try {
    await execa(program, ['--version']);
    return true;
  } catch {
    const message = `"${program}" is not installed; install the Debian package "${debianPackage}" (apt-get install ${debianPackage}).`;
    if (process.env.CI === 'true') throw new Error(message);
    t.skip(message);
    return false;
  }
}

// Runs a transform step on `input` to the end; returns the bytes it produced and its outputs.
export async function runTransform(
  step: StepDefinition<any, any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  withValue: Record<string, unknown>,
  input: Buffer,
): Promise<{ data: Buffer; outputs: Record<string, unknown> }> {
  const { ctx, dispose } = await stepContext({ with: withValue, input: Readable.from([input]) });
  try {
    const res = await step.run(ctx);
    const parts: Buffer[] = [];
    for await (const chunk of res.output!) parts.push(chunk as Buffer);
    return { data: Buffer.concat(parts), outputs: res.outputs! };
  } finally {
    await dispose();
  }
}

/** Counts (with checksums, of the `checksum` scheme when given) of the database at `url` by a built-in driver, as restore-test and restore count. */
export async function checksummedCounts(driver: string, url: string, checksum?: string): Promise<TableCounts> {
  const d = (await builtinRegistry()).drivers.get(driver)!;
  const { ctx, dispose } = await stepContext({ with: {} });
  try {
    const config: DatabaseConfig = { name: 'app', driver, url, options: { checksums: true } };
    return await d.rowCounts(ctx, { url, db: config, ...(checksum !== undefined && { checksum }) });
  } finally {
    await dispose();
  }
}

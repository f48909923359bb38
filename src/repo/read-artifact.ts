// A stored artifact read back to its raw dump and handed to a consumer (a restore, or nowhere), checked on the way.
import type { Readable } from 'node:stream';
import { CancelledError, DbflowError, IntegrityError, RepositoryError } from '../errors.js';
import type { ArtifactRecord, DecodeKeys, EdgeStats } from '../plugins/types.js';
import { fedOnRead, programOutputOf } from '../plugins/process-stream.js';
import { decodeArtifact, digestCheck, type DecodeScope } from './restore.js';

/** How `readArtifact` runs. */
export interface ReadOptions {
  signal: AbortSignal;
  /** Raw bytes decoded so far. */
  progress?: (bytes: number) => void;
  /**
   * After a failure further down, read the rest of the stored object through its digest check alone,
   * to tell a damaged object (size or sha256 differ from the manifest) from a failure of decoding
   * (wrong key) or of the consumer. Costs the rest of the download; `verify` wants it.
   */
  settleDigest?: boolean;
  /**
   * Let the consumer's program read the last decoder's program directly (`programInput`), as a shell
   * pipe would, when the manifest records the raw dump's size alone (its compressor's checksum covered
   * it): the size is then the one the decoder reports. A consumer that gets a clean end of its input
   * may still have restored data that a later check (the stored object's sha256, at its end) finds
   * wrong; only a consumer whose target is dropped on failure (a restore-test) asks for it.
   */
  direct?: boolean;
}

/**
 * Reads the stored object, checks its size and sha256, decodes every layer and checks the raw dump's
 * size and sha256 (when the record has them); `consume` gets the raw stream and must read it to its
 * end. A failed check errors the stream before its end, so a consumer never sees a clean end of bad
 * data. A failure of reading is an error that names the object; a failure of `consume` is rethrown
 * as is. Resolves with the raw dump's size and sha256.
 */
export async function readArtifact(
  scope: DecodeScope,
  artifact: ArtifactRecord,
  keys: DecodeKeys,
  consume: (raw: Readable) => Promise<void>,
  options: ReadOptions,
): Promise<EdgeStats> {
  if (options.signal.aborted) throw new CancelledError(`reading ${artifact.url} was interrupted`);
  const opened = await decodeArtifact(scope, artifact, keys, options.signal).catch((err: unknown) => {
    if (options.signal.aborted) throw new CancelledError(`reading ${artifact.url} was interrupted`);
    throw named(err, artifact.url);
  });
  const expected = artifact.raw;
  let got: EdgeStats | undefined;
  let rawError: Error | undefined;
  const raw = digestCheck(
    expected,
    (g) =>
      (rawError = new IntegrityError(
        expected!.sha256 === undefined
          ? `${artifact.url} decodes to ${g.bytes} bytes, but the dump taken was ${expected!.bytes} bytes.`
          : `${artifact.url} decodes to ${g.bytes} bytes with sha256 ${g.sha256}, but the dump taken was ${expected!.bytes} bytes with sha256 ${expected!.sha256}.`,
      )),
    { ...(options.progress && { onBytes: options.progress }), done: (g) => (got = g) },
  );
  // The first error of a reading stage is where the failure started; later ones are its echoes.
  let readError: { error: unknown; at: Readable } | undefined;
  for (const p of opened.parts) p.on('error', (error) => (readError ??= { error, at: p }));
  raw.on('error', (error) => {
    if (error === rawError) readError ??= { error, at: raw };
  });
  opened.stream.on('error', (err) => raw.destroy(err));
  const program = options.direct && expected !== undefined && expected.sha256 === undefined ? programOutputOf(opened.stream) : undefined;
  if (program) {
    fedOnRead(raw, opened.stream);
    // Taken, the raw bytes pass no meter here: progress counts the stored bytes instead.
    if (options.progress) {
      let stored = 0;
      opened.checked.on('data', (chunk: Buffer) => program.taken && options.progress!((stored += chunk.length)));
    }
  } else opened.stream.pipe(raw);
  const stages = [...opened.parts, raw];
  const stop = (): void => stages.forEach((s) => s.destroy());
  options.signal.addEventListener('abort', stop, { once: true });
  try {
    await consume(raw);
    if (program?.taken) {
      // Its program exited 0 only after the whole stored object had passed every check: what is left is the size.
      if (readError) throw readError.error;
      const bytes = await program.reported;
      if (bytes === undefined)
        throw new DbflowError(`${artifact.url}: the decoder did not say how many bytes it wrote, so the dump's size is unchecked.`);
      if (bytes !== expected!.bytes)
        throw new IntegrityError(`${artifact.url} decodes to ${bytes} bytes, but the dump taken was ${expected!.bytes} bytes.`);
      return { bytes };
    }
    // A consumer may be done before the end (a program that stops at its own end marker): the rest is still checked.
    if (!raw.readableEnded) await drain(raw, artifact.url);
    if (readError) throw readError.error;
    return got!;
  } catch (err) {
    if (options.signal.aborted) {
      stop();
      throw new CancelledError(`reading ${artifact.url} was interrupted`);
    }
    const fromObject = readError && (readError.at === opened.checked || readError.at === opened.parts[0]);
    if (options.settleDigest && !fromObject) {
      const verdict = await settle(opened.parts[0]!, opened.checked, stages);
      stop();
      if (verdict.error !== undefined) throw named(verdict.error, artifact.url);
      if (verdict.intact) {
        const cause = readError?.error ?? err;
        throw named(cause, artifact.url, " (the stored object's size and sha256 equal the manifest's: it is stored as it was written)");
      }
    }
    stop();
    if (readError) throw named(readError.error, artifact.url);
    throw err;
  } finally {
    options.signal.removeEventListener('abort', stop);
  }
}

// Reads the rest of `raw` to nowhere; fails when it fails or was destroyed before its end.
function drain(raw: Readable, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (raw.destroyed) return reject(raw.errored ?? new DbflowError(`reading ${url} stopped before the end of its dump.`));
    raw.once('end', resolve);
    raw.once('error', reject);
    raw.once('close', () =>
      raw.readableEnded ? resolve() : reject(new DbflowError(`reading ${url} stopped before the end of its dump.`)),
    );
    raw.resume();
  });
}

// Reads the rest of the stored object through its digest check alone, every later stage stopped.
async function settle(stored: Readable, checked: Readable, stages: Readable[]): Promise<{ error?: unknown; intact?: boolean }> {
  for (const s of stages) if (s !== checked && s !== stored) s.destroy();
  if (checked.readableEnded) return { intact: true };
  if (checked.destroyed || stored.destroyed) return {};
  // Unpiped now, not when the stages just destroyed report their close: that unpipe would pause the check after the
  // resume below, and it would wait forever (seen under load, when a decoder failed before the digest did).
  checked.unpipe();
  return new Promise((resolve) => {
    checked.once('end', () => resolve({ intact: true }));
    checked.once('error', (error) => resolve({ error }));
    stored.once('error', (error) => resolve({ error }));
    checked.once('close', () => resolve({}));
    checked.resume();
  });
}

// The error with the object's URL in its message (a decoder's or a storage's message may not name it),
// of the same kind: damaged data stays an IntegrityError, a missing key or program a plain DbflowError.
function named(err: unknown, url: string, note = ''): Error {
  if (err instanceof CancelledError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes(url) && !note && err instanceof DbflowError) return err;
  const text = message.includes(url) ? `${message}${note}` : `${url}: ${message}${note}`;
  if (err instanceof IntegrityError) return new IntegrityError(text, { cause: err });
  if (err instanceof DbflowError && !(err instanceof RepositoryError)) return new DbflowError(text, { cause: err });
  return new RepositoryError(text, { cause: err });
}

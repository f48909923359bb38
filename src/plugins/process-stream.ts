// Subprocess streams for plugins: a stdout that ends only after a clean exit, and a stdin fed from a stream.
import { Transform, type Readable } from 'node:stream';
import type { ResultPromise } from 'execa';

const GATHER_BYTES = 256 * 1024;

/**
 * The stdout of `sub`, held back at its end until `sub` has exited: a non-zero exit or a signal
 * errors the stream (through `mapError`) instead of ending it, so a sink never publishes a dump
 * that stopped early. Destroying the stream kills the process.
 */
export function checkedStdout(sub: ResultPromise, mapError: (error: unknown) => Error): Readable {
  // Programs such as pg_dump write a few KiB at a time; every later stage pays per chunk, so chunks are gathered.
  let held: Buffer[] = [];
  let heldBytes = 0;
  const gathered = (): Buffer => {
    const b = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    return b;
  };
  const out = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, done) {
      held.push(chunk);
      heldBytes += chunk.length;
      done(null, heldBytes >= GATHER_BYTES ? gathered() : undefined);
    },
    flush(done) {
      sub.then(
        () => done(null, heldBytes ? gathered() : undefined),
        (error: unknown) => done(mapError(error)),
      );
    },
    destroy(error, done) {
      if (sub.exitCode === null && sub.signalCode === null) sub.kill('SIGTERM');
      done(error);
    },
  });
  sub.catch((error: unknown) => {
    // A failure before stdout ends (a kill, a crash) errors the stream at once.
    if (!out.destroyed && !out.writableFinished) out.destroy(mapError(error));
  });
  sub.stdout!.pipe(out);
  return out;
}

/** Waits for `sub` to end with `input` written to its stdin; an error of `input` kills it and fails. */
export async function feedStdin(sub: ResultPromise, input: Readable, mapError: (error: unknown) => Error): Promise<void> {
  let inputError: Error | undefined;
  input.once('error', (error: Error) => {
    inputError = error;
    sub.kill('SIGTERM');
  });
  sub.stdin!.on('error', () => undefined); // EPIPE when the process exits early: its exit status tells why
  input.pipe(sub.stdin!);
  try {
    await sub;
  } catch (error) {
    // Nobody reads the input any more: stop whatever produces it.
    input.unpipe(sub.stdin!);
    input.destroy();
    throw inputError ?? mapError(error);
  }
  if (inputError) throw inputError;
}

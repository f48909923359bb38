// Subprocess streams for plugins: a stdout that ends only after a clean exit, and a stdin fed from a stream.
import { Duplex, Transform, type Readable } from 'node:stream';
import type { ResultPromise } from 'execa';
import { DbflowError } from '../errors.js';

const GATHER_BYTES = 256 * 1024;

// The parts of a stdout pipe's libuv handle used here (Node's own net.Socket reads the same fields).
interface PipeHandle {
  fd?: number;
  reading?: boolean;
  readStart?: () => number;
  readStop?: () => number;
}

/** A program's stdout not yet read by dbflow, which a later program may take as its stdin. */
export interface ProgramOutput {
  /** The descriptor of the stdout pipe, or undefined once dbflow reads it (or it is gone). */
  take(): { fd: number; release: () => void } | undefined;
  /** Settles with the program: resolves on a clean exit, rejects with the mapped error otherwise. */
  readonly exited: Promise<void>;
  /** True once another program took the stdout. */
  readonly taken: boolean;
  /** How many bytes the program says it wrote, once it has exited (when it says so). */
  reported?: Promise<number | undefined>;
}

/**
 * Stops Node's reading of a socket or pipe at once (in this tick), below the stream: what arrives
 * from now on stays in the kernel, for a program that is given the descriptor. Returns the handle
 * (undefined when the stream has none). Bytes Node read before are in the stream's buffer.
 */
export function stopReading(stream: unknown): PipeHandle | undefined {
  const handle = (stream as { _handle?: PipeHandle | null } | null | undefined)?._handle ?? undefined;
  if (handle?.reading && typeof handle.readStop === 'function') {
    handle.readStop();
    handle.reading = false;
  }
  return handle;
}

/** Starts Node's reading of a stream stopped by `stopReading` again (its stream still counts a read as pending). */
function startReading(stream: unknown): void {
  const handle = (stream as { _handle?: PipeHandle | null; destroyed?: boolean } | null | undefined)?._handle ?? undefined;
  if (handle && !handle.reading && !(stream as { destroyed?: boolean }).destroyed && typeof handle.readStart === 'function') {
    handle.reading = true;
    handle.readStart();
  }
}

const PROGRAM_OUTPUT = Symbol('dbflow.programOutput');

/** The program behind a stream made by `checkedStdout`, if it is one. */
export function programOutputOf(stream: Readable): ProgramOutput | undefined {
  return (stream as Readable & { [PROGRAM_OUTPUT]?: ProgramOutput })[PROGRAM_OUTPUT];
}

/**
 * The stdout of `sub`, held back at its end until `sub` has exited: a non-zero exit or a signal
 * errors the stream (through `mapError`) instead of ending it, so a sink never publishes a dump
 * that stopped early. Destroying the stream kills the process. Nothing is read before the stream is:
 * until then the next program of a chain may take the stdout itself (see `StepContext.inputPipe`).
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
  // Node starts reading a child's stdout the moment it spawns it: stopped here (in the same tick), so that
  // no byte sits in dbflow's buffer (and is missing for a program that takes the pipe later) before `out` is read.
  const handle = stopReading(sub.stdout);
  // Reading starts with the first read of `out`; a program that took the stdout is never read from here.
  let state: 'idle' | 'reading' | 'taken' = 'idle';
  sub.catch((error: unknown) => {
    // A failure before stdout ends (a kill, a crash) errors the stream at once (once taken, `exited` reports it).
    if (state !== 'taken' && !out.destroyed && !out.writableFinished) out.destroy(mapError(error));
  });
  const read = out._read.bind(out);
  out._read = (size: number): void => {
    if (state === 'idle') {
      state = 'reading';
      sub.stdout!.pipe(out);
      // The stream still counts the read begun at spawn as pending, so it does not start the handle again itself.
      startReading(sub.stdout);
    }
    read(size);
  };
  const exited = sub.then(
    () => undefined,
    (error: unknown) => {
      throw mapError(error);
    },
  );
  exited.catch(() => undefined); // whoever took the stdout reports it
  const program: ProgramOutput = {
    exited,
    get taken() {
      return state === 'taken';
    },
    take() {
      const fd = handle?.fd;
      // Bytes already read into the stream would be missing for the program: it is then read here instead.
      if (state !== 'idle' || typeof fd !== 'number' || fd < 0 || handle?.reading || (sub.stdout?.readableLength ?? 1) > 0)
        return undefined;
      state = 'taken';
      return { fd, release: () => sub.stdout!.destroy() };
    },
  };
  Object.defineProperty(out, PROGRAM_OUTPUT, { value: program });
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

/**
 * A program between two streams: what is written goes to its stdin, its stdout is read from the
 * stage (not before the stage is read), and, like `checkedStdout`, a later program may take that
 * stdout instead. `reported` is what the program says it wrote. Destroying the stage kills it.
 */
export function programStage(sub: ResultPromise, mapError: (error: unknown) => Error, reported?: Promise<number | undefined>): Duplex {
  const out = checkedStdout(sub, mapError);
  const program = programOutputOf(out)!;
  if (reported) program.reported = reported;
  const stdin = sub.stdin!;
  stdin.on('error', () => undefined); // EPIPE when the program exits early: its exit status tells why
  let reading = false;
  const stage: Duplex = new Duplex({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    write(chunk: Buffer, _encoding, done) {
      if (stdin.destroyed) return done(); // the program has gone; how it ended is reported by its exit
      if (stdin.write(chunk)) done();
      else stdin.once('drain', () => done());
    },
    final(done) {
      stdin.end();
      done();
    },
    read() {
      if (!reading) {
        reading = true;
        out.on('data', (chunk: Buffer) => {
          if (!stage.push(chunk)) out.pause();
        });
        out.on('end', () => stage.push(null));
      }
      out.resume();
    },
    destroy(error, done) {
      out.destroy();
      done(error);
    },
  });
  out.on('error', (error) => stage.destroy(error));
  Object.defineProperty(stage, PROGRAM_OUTPUT, { value: program });
  return stage;
}

/** A program's stdin made from `input`: the stdout of the program behind it when that can be taken, else a pipe that `feed` writes. */
export interface ProgramInput {
  /** What to give the program as its stdin. */
  stdin: 'pipe' | number;
  /** Waits for the program (started with `stdin`) and for the program it reads from: the first failure is the cause. */
  feed(sub: ResultPromise, mapError: (error: unknown) => Error): Promise<void>;
}

/**
 * The stdin of a program that reads `input` to its end: the stdout of the program behind `input`
 * when it can be taken (`programOutputOf`), so the bytes go from one program to the other as in a
 * shell pipe; else `input` is written to it through dbflow (`feedStdin`).
 */
export function programInput(input: Readable): ProgramInput {
  const program = programOutputOf(input);
  const taken = program?.take();
  if (!program || !taken) return { stdin: 'pipe', feed: (sub, mapError) => feedStdin(sub, input, mapError) };
  return {
    stdin: taken.fd,
    async feed(sub, mapError) {
      taken.release(); // the program holds its own copy now
      // The first to fail is the cause: a writer that dies first (corrupt input) leaves its reader a truncated
      // stream; a reader that dies first leaves its writer a broken pipe. (Both ending at once, the broken
      // pipe may be seen first: the reader's own failure is then the cause.)
      let first: { error: unknown } | undefined;
      let reader: { error: unknown } | undefined;
      await Promise.all([
        sub.then(
          () => undefined,
          (error: unknown) => {
            reader = { error: mapError(error) };
            first ??= reader;
          },
        ),
        program.exited.catch((error: unknown) => void (first ??= { error })),
      ]);
      if (first) {
        input.destroy();
        const brokenPipe = (first.error as { cause?: { signal?: string } }).cause?.signal === 'SIGPIPE';
        if (brokenPipe && reader) throw reader.error;
        if (brokenPipe)
          throw new DbflowError('the program reading the stream stopped before its end; the rest was not checked.', { cause: first.error });
        throw first.error;
      }
    },
  };
}

/**
 * Feeds `outer` from `inner` from its first read on, and offers the output of the program behind
 * `inner` (`programOutputOf`) as `outer`'s own until then: a program that takes it reads `inner`'s
 * program directly, and `outer` gets nothing.
 */
export function fedOnRead<T extends Duplex>(outer: T, inner: Readable): T {
  const program = programOutputOf(inner);
  let fed = false;
  const read = outer._read.bind(outer);
  outer._read = (size: number): void => {
    if (!fed && !program?.taken) {
      fed = true;
      inner.pipe(outer);
    }
    read(size);
  };
  if (program) {
    const offered: ProgramOutput = {
      exited: program.exited,
      get taken() {
        return program.taken;
      },
      ...(program.reported && { reported: program.reported }),
      take: () => (fed ? undefined : program.take()),
    };
    Object.defineProperty(outer, PROGRAM_OUTPUT, { value: offered });
  }
  return outer;
}

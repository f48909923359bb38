// zstd through the stock `zstd` binary: the compress stage of the step and the decode codec.
import { pipeline, type Duplex, type Readable } from 'node:stream';
import type { ResultPromise } from 'execa';
import {
  CancelledError,
  checkedStdout,
  DbflowError,
  IntegrityError,
  programEnv,
  programStage,
  type Codec,
  type StepContext,
} from '../../src/plugin-api.js';
import { mappedDuplex } from './mapped-duplex.js';

// stdout is streamed, never collected; stderr is kept (it is small) for the error message.
const STREAMING = { buffer: { stdout: false, stderr: true } } as const;

/**
 * Compresses `ctx.input` with `zstd -<level> -T<threads>`; a failure of zstd errors the returned stream.
 * When the input is a dump program's stdout, zstd reads it directly (no copy through dbflow, as in a
 * shell pipeline) and reports how many bytes it read; zstd's frame checksum covers those bytes.
 */
export function zstdCompress(ctx: StepContext<unknown>, level: number, threads: number): Readable {
  const pipe = ctx.inputPipe();
  if (pipe) {
    // (execa hands any descriptor to spawn as is; its types list only 3–9.) Its verbose stderr is read here, not logged.
    const stdin = pipe.fd as 3;
    const direct = ctx.exec('zstd', [`-${level}`, `-T${threads}`, '-vv', '--no-progress', '-c'], { ...STREAMING, stdin, stderr: 'pipe' });
    pipe.given();
    const output = checkedStdout(direct, (error) => zstdError(error, 'compress'));
    direct.then(
      ({ stderr }) => {
        const read = bytesRead(String(stderr));
        if (read !== undefined) pipe.counted(read);
        else
          output.destroy(
            new DbflowError('zstd did not say how many bytes it compressed (its "-vv" summary line is missing); the dump is not recorded.'),
          );
      },
      () => undefined, // the stream reports it
    );
    return output;
  }
  const sub = ctx.exec('zstd', [`-${level}`, `-T${threads}`, '-q', '-c'], STREAMING);
  const stage = processStage(sub, (error) => zstdError(error, 'compress'));
  pipeline(ctx.input, stage, () => undefined); // errors reach the output through `stage`
  return stage;
}

// The reverse of the zstd layer: `zstd -d`; corrupt or truncated input errors the stream.
export const zstdCodec: Codec = {
  name: 'zstd',
  async decode({ exec }) {
    // Without a step's exec (a caller outside a run), the same minimal environment; execa is loaded only then.
    // Its output may be taken by the restore program; "-vv" makes zstd say how many bytes it wrote (read here, not logged).
    const args = ['-d', '-vv', '--no-progress', '-c'];
    const sub = exec
      ? exec('zstd', args, { ...STREAMING, stderr: 'pipe' })
      : (await import('execa')).execa('zstd', args, { ...STREAMING, env: programEnv(), extendEnv: false });
    const reported = sub.then(
      ({ stderr }) => bytesWritten(String(stderr)),
      () => undefined,
    );
    return programStage(sub, (error) => zstdError(error, 'decompress'), reported);
  },
};

// The subprocess as a duplex (stdin → stdout); destroying it kills the process.
function processStage(sub: ResultPromise, mapError: (error: unknown) => Error): Duplex {
  sub.catch(() => undefined); // the stream reports the failure
  return mappedDuplex(sub.duplex(), {
    mapError,
    onDestroy: () => {
      if (sub.exitCode === null && sub.signalCode === null) sub.kill();
    },
  });
}

interface ExecFailure {
  code?: string;
  exitCode?: number;
  signal?: string;
  stderr?: unknown;
  isCanceled?: boolean;
}

// A clear message for a zstd failure: missing binary, cancel, or its own complaint.
function zstdError(error: unknown, action: 'compress' | 'decompress'): Error {
  if (error instanceof DbflowError) return error;
  const e = (error ?? {}) as ExecFailure;
  if (e.code === 'ENOENT') {
    const alt = action === 'compress' ? ' or set "algorithm: gzip"' : '';
    return new DbflowError(`cannot ${action}: the "zstd" program was not found on PATH; install zstd (apt-get install zstd)${alt}.`, {
      cause: error,
    });
  }
  if (e.isCanceled) return new CancelledError(`zstd (${action}) was stopped because the step was cancelled.`);
  const said = typeof e.stderr === 'string' ? lastComplaint(e.stderr) : undefined;
  const how = e.exitCode !== undefined ? `exited with code ${e.exitCode}` : e.signal ? `was killed by ${e.signal}` : 'failed';
  const detail = said ? `: ${said}` : e.exitCode === undefined && error instanceof Error ? `: ${error.message}` : '';
  if (action === 'decompress') {
    return new IntegrityError(`zstd -d ${how}${detail}. The data is corrupt, truncated or not zstd.`, { cause: error });
  }
  return new DbflowError(`zstd ${how} while compressing${detail}.`, { cause: error });
}

// The input size in zstd's summary: "(  123 B =>   45 B," (1.5) or "(  123 =>   45 bytes," (1.4).
function bytesRead(stderr: string): number | undefined {
  const m = /\(\s*(\d+) B =>\s*\d+ B\b|\(\s*(\d+) =>\s*\d+ bytes\b/.exec(stderr);
  const n = m ? Number(m[1] ?? m[2]) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

// The output size in zstd's summary of a decompression: "/*stdin*\\ : 123 bytes".
function bytesWritten(stderr: string): number | undefined {
  const m = /^\S.*: (\d+) bytes\s*$/m.exec(stderr);
  const n = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

// zstd's last stderr line without its `zstd: /*stdin*\:` prefix.
function lastComplaint(stderr: string): string | undefined {
  const line = stderr.trim().split('\n').pop();
  return line?.replace(/^zstd: /, '').replace(/^\/\*stdin\*\\?: */, '') || undefined;
}

// zstd through the stock `zstd` binary: the compress stage of the step and the decode codec.
import { pipeline, type Duplex, type Readable } from 'node:stream';
import type { ResultPromise } from 'execa';
import { CancelledError, DbflowError, IntegrityError, type Codec, type StepContext } from '../../src/index.js';
import { mappedDuplex } from './mapped-duplex.js';

// stdout is streamed, never collected; stderr is kept (it is small) for the error message.
const STREAMING = { buffer: { stdout: false, stderr: true } } as const;

// Compresses `ctx.input` with `zstd -<level> -T<threads>`; a failure of zstd errors the returned stream.
export function zstdCompress(ctx: StepContext<unknown>, level: number, threads: number): Readable {
  const sub = ctx.exec('zstd', [`-${level}`, `-T${threads}`, '-q', '-c'], STREAMING);
  const stage = processStage(sub, (error) => zstdError(error, 'compress'));
  pipeline(ctx.input, stage, () => undefined); // errors reach the output through `stage`
  return stage;
}

// The reverse of the zstd layer: `zstd -d`; corrupt or truncated input errors the stream.
export const zstdCodec: Codec = {
  name: 'zstd',
  async decode(_keys, _layer, exec) {
    const run = exec ?? (await import('execa')).execa; // loaded when needed: validation never decodes
    const sub = run('zstd', ['-d', '-q', '-c'], STREAMING);
    return processStage(sub, (error) => zstdError(error, 'decompress'));
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

// zstd's last stderr line without its `zstd: /*stdin*\:` prefix.
function lastComplaint(stderr: string): string | undefined {
  const line = stderr.trim().split('\n').pop();
  return line?.replace(/^zstd: /, '').replace(/^\/\*stdin\*\\?: */, '') || undefined;
}

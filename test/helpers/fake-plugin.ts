// Tiny fake steps for engine and plan tests: each records what happened into a shared state.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { checkedStdout, DbflowError, definePlugin, defineStep, type Plugin, type StepContext } from '../../src/index.js';

/** What the fake steps saw and did during a run. */
export interface FakeState {
  /** Steps running right now, and the most at once. */
  running: number;
  maxRunning: number;
  /** Attempts per step instance (the `fail` step). */
  attempts: Map<string, number>;
  /** The rendered `with` each step instance received (`noop`). */
  withs: Map<string, Record<string, unknown>>;
  /** Ordered happenings: `start:<id>`, `end:<id>`, `release:<id>`, `cleanup:<id>`. */
  order: string[];
  /** Bytes each `collect` sink read. */
  collected: Map<string, Buffer>;
  /** `bytes` sources: bytes produced; `slow-sink`: bytes consumed; the largest gap seen. */
  produced: number;
  consumed: number;
  maxLead: number;
  /** Pids of child processes started by `spawn-sleep`. */
  pids: number[];
  /** Step instances whose cleanup ran. */
  cleanups: string[];
  /** `program-copy` steps that took their input's pipe (their program read it directly). */
  piped: string[];
  /** The tmpdir of each `stubborn` step with `remake_tmpdir`. */
  tmpdirs: Map<string, string>;
}

export interface Fake {
  plugin: Plugin;
  state: FakeState;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789 \n';

/** The deterministic bytes a `bytes` source produces, from absolute offset `from`. */
export function fakeBytes(size: number, from = 0): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) {
    const at = from + i;
    buf[i] = ALPHABET.charCodeAt((at * 7 + (at >> 9)) % ALPHABET.length);
  }
  return buf;
}

/** What the `upper` transform makes of `buf`. */
export function upperBytes(buf: Buffer): Buffer {
  return Buffer.from(buf.toString('latin1').toUpperCase(), 'latin1');
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

// Schemas are shared between fake plugins, so Ajv compiles each one once per process.
const schemas = new Map<string, Record<string, unknown>>();
const obj = (properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> => {
  const key = JSON.stringify([properties, required]);
  let schema = schemas.get(key);
  if (!schema) {
    schema = { type: 'object', additionalProperties: false, ...(required.length && { required }), properties };
    schemas.set(key, schema);
  }
  return schema;
};
const int = { type: 'integer', minimum: 0 };
const anyOutputs = { type: 'object' };

/** A fresh fake plugin (default name `fake`) with its own state. */
export function createFake(name = 'fake'): Fake {
  const state: FakeState = {
    running: 0,
    maxRunning: 0,
    attempts: new Map(),
    withs: new Map(),
    order: [],
    collected: new Map(),
    produced: 0,
    consumed: 0,
    maxLead: 0,
    pids: [],
    cleanups: [],
    piped: [],
    tmpdirs: new Map(),
  };
  const recordCleanup = (ctx: StepContext<unknown>): Promise<void> => {
    state.cleanups.push(ctx.id);
    state.order.push(`cleanup:${ctx.id}`);
    return Promise.resolve();
  };
  const begin = (id: string): void => {
    state.running++;
    state.maxRunning = Math.max(state.maxRunning, state.running);
    state.order.push(`start:${id}`);
  };
  const end = (id: string): void => {
    state.running--;
    state.order.push(`end:${id}`);
  };

  const noop = defineStep<{ log?: string; value?: unknown }>({
    uses: 'noop',
    kind: 'task',
    description: 'Records its `with` and logs `log`.',
    with: obj({ log: { type: 'string' }, value: {} }),
    outputs: anyOutputs,
    run(ctx) {
      state.withs.set(ctx.id, ctx.with);
      state.order.push(`start:${ctx.id}`, `end:${ctx.id}`);
      if (ctx.with.log !== undefined) ctx.log.info(ctx.with.log);
      return Promise.resolve({ outputs: ctx.with.log !== undefined ? { log: ctx.with.log } : {} });
    },
  });

  const sleep = defineStep<{ ms: number; fail?: string }>({
    uses: 'sleep',
    kind: 'task',
    description: 'Waits `ms` milliseconds (honours cancel), then fails with `fail` if given.',
    with: obj({ ms: int, fail: { type: 'string' } }, ['ms']),
    outputs: obj({ slept: int }),
    async run(ctx) {
      begin(ctx.id);
      try {
        await delay(ctx.with.ms, undefined, { signal: ctx.signal });
        if (ctx.with.fail !== undefined) throw new Error(ctx.with.fail);
      } finally {
        end(ctx.id);
      }
      return { outputs: { slept: ctx.with.ms } };
    },
    cleanup: recordCleanup,
  });

  const stubborn = defineStep<{ ms: number; remake_tmpdir?: boolean }>({
    uses: 'stubborn',
    kind: 'task',
    description:
      'Waits `ms` milliseconds and ignores its signal (a badly behaved plugin); `remake_tmpdir` makes its tmpdir at start and again (mkdir -p) at its end.',
    with: obj({ ms: int, remake_tmpdir: { type: 'boolean' } }, ['ms']),
    async run(ctx) {
      begin(ctx.id);
      const dir = ctx.with.remake_tmpdir ? ctx.tmpdir : undefined;
      if (dir) state.tmpdirs.set(ctx.id, dir);
      await delay(ctx.with.ms, undefined, { ref: false }); // does not keep the test process alive
      if (dir) mkdirSync(path.join(dir, 'late'), { recursive: true });
      end(ctx.id);
      return { outputs: {} };
    },
  });

  const fail = defineStep<{ message: string; fail_times?: number }>({
    uses: 'fail',
    kind: 'task',
    description: 'Throws `message` (only the first `fail_times` attempts, when given).',
    with: obj({ message: { type: 'string' }, fail_times: int }, ['message']),
    outputs: obj({ attempts: int }),
    run(ctx) {
      const attempts = (state.attempts.get(ctx.id) ?? 0) + 1;
      state.attempts.set(ctx.id, attempts);
      state.order.push(`start:${ctx.id}`, `end:${ctx.id}`);
      if (ctx.with.fail_times === undefined || attempts <= ctx.with.fail_times) {
        return Promise.reject(new Error(ctx.with.message));
      }
      return Promise.resolve({ outputs: { attempts } });
    },
    cleanup: recordCleanup,
  });

  const emit = defineStep<{ outputs: Record<string, unknown> }>({
    uses: 'emit',
    kind: 'task',
    description: 'Returns `with.outputs` as its outputs.',
    with: obj({ outputs: { type: 'object' } }, ['outputs']),
    outputs: anyOutputs,
    run(ctx) {
      state.order.push(`start:${ctx.id}`, `end:${ctx.id}`);
      return Promise.resolve({ outputs: ctx.with.outputs });
    },
  });

  const bytes = defineStep<{ size: number; chunk?: number; delay_ms?: number; fail_after?: number }>({
    uses: 'bytes',
    kind: 'source',
    description: 'Produces `size` deterministic bytes (see fakeBytes).',
    with: obj({ size: int, chunk: { type: 'integer', minimum: 1 }, delay_ms: int, fail_after: int }, ['size']),
    outputs: obj({ size: int }),
    run(ctx) {
      const { size, chunk = 64 * 1024, delay_ms: delayMs = 0, fail_after: failAfter } = ctx.with;
      let sent = 0;
      const push = (): void => {
        if (stream.destroyed) return;
        if (failAfter !== undefined && sent >= failAfter) {
          stream.destroy(new Error(`bytes: source broke after ${sent} bytes`));
          return;
        }
        if (sent >= size) {
          stream.push(null);
          return;
        }
        const n = Math.min(chunk, size - sent);
        const buf = fakeBytes(n, sent);
        sent += n;
        state.produced += n;
        state.maxLead = Math.max(state.maxLead, state.produced - state.consumed);
        stream.push(buf);
      };
      const stream = new Readable({
        highWaterMark: chunk,
        read() {
          if (delayMs) setTimeout(push, delayMs);
          else push();
        },
      });
      ctx.signal.addEventListener('abort', () => stream.destroy(new Error('bytes: aborted')), { once: true });
      state.order.push(`start:${ctx.id}`);
      return Promise.resolve({ output: stream, outputs: { size } });
    },
    cleanup: recordCleanup,
  });

  const upper = defineStep({
    uses: 'upper',
    kind: 'transform',
    description: 'Upper-cases ASCII letters.',
    with: obj({}),
    run(ctx) {
      state.order.push(`start:${ctx.id}`);
      const t = new Transform({ transform: (c: Buffer, _e, done) => done(null, upperBytes(c)) });
      return Promise.resolve({ output: ctx.input.pipe(t), outputs: { case: 'upper' } });
    },
    cleanup: recordCleanup,
  });

  const passthrough = defineStep<{ fail_after?: number; start_ms?: number; final_error?: string }>({
    uses: 'passthrough',
    kind: 'transform',
    description:
      'Passes bytes on; breaks after `fail_after` bytes when given; takes `start_ms` to start; `final_error` rejects its late outputs.',
    with: obj({ fail_after: int, start_ms: int, final_error: { type: 'string' } }),
    async run(ctx) {
      state.order.push(`start:${ctx.id}`);
      if (ctx.with.start_ms) await new Promise((resolve) => setTimeout(resolve, ctx.with.start_ms));
      const finalError = ctx.with.final_error;
      const final = finalError === undefined ? undefined : Promise.reject(new Error(finalError));
      let seen = 0;
      const t = new Transform({
        transform: (c: Buffer, _e, done) => {
          seen += c.length;
          const limit = ctx.with.fail_after;
          if (limit !== undefined && seen > limit) done(new Error(`passthrough: broke after ${limit} bytes`));
          else done(null, c);
        },
      });
      ctx.input.on('error', (err) => t.destroy(err));
      return { output: ctx.input.pipe(t), ...(final && { final }) };
    },
    cleanup: recordCleanup,
  });

  const collect = defineStep<{ fail_after?: number; cleanup_ms?: number }>({
    uses: 'collect',
    kind: 'sink',
    description: 'Reads its input and records it; `fail_after` stops reading there and fails `cleanup_ms` later (a failed write).',
    with: obj({ fail_after: int, cleanup_ms: int }),
    outputs: obj({ received: int, input_bytes: int, input_sha256: { type: 'string' } }),
    async run(ctx) {
      state.order.push(`start:${ctx.id}`);
      const chunks: Buffer[] = [];
      let read = 0;
      for await (const c of ctx.input) {
        chunks.push(c as Buffer);
        read += (c as Buffer).length;
        if (ctx.with.fail_after !== undefined && read > ctx.with.fail_after) break; // closes the input
      }
      if (ctx.with.fail_after !== undefined && read > ctx.with.fail_after) {
        await delay(ctx.with.cleanup_ms ?? 0);
        throw new DbflowError(`collect: the write failed after ${read} bytes`);
      }
      const buf = Buffer.concat(chunks);
      state.collected.set(ctx.id, buf);
      const stats = await ctx.inputStats();
      state.order.push(`end:${ctx.id}`);
      return { outputs: { received: buf.length, input_bytes: stats.bytes, input_sha256: stats.sha256 } };
    },
    cleanup: recordCleanup,
  });

  const slowSink = defineStep<{ delay_ms: number }>({
    uses: 'slow-sink',
    kind: 'sink',
    description: 'Reads its input slowly: waits `delay_ms` after each chunk.',
    with: obj({ delay_ms: int }, ['delay_ms']),
    async run(ctx) {
      state.order.push(`start:${ctx.id}`);
      for await (const c of ctx.input) {
        state.consumed += (c as Buffer).length;
        await delay(ctx.with.delay_ms, undefined, { signal: ctx.signal });
      }
      return { outputs: { consumed: state.consumed } };
    },
    cleanup: recordCleanup,
  });

  const lease = defineStep({
    uses: 'lease',
    kind: 'task',
    description: 'Leases a resource (its own id); its release is recorded.',
    with: obj({}),
    run(ctx) {
      state.order.push(`start:${ctx.id}`, `end:${ctx.id}`);
      ctx.lease(ctx.id, (r) => {
        state.order.push(`release:${r}`);
      });
      return Promise.resolve({ outputs: {} });
    },
  });

  const useLease = defineStep<{ lease: string; ms: number; fail?: string }>({
    uses: 'use-lease',
    kind: 'task',
    description: 'Reads the resource of a `lease` step, waits `ms`, fails with `fail` if given.',
    with: obj({ lease: { type: 'string', format: 'step-id' }, ms: int, fail: { type: 'string' } }, ['lease', 'ms']),
    async run(ctx) {
      const resource = ctx.resource<string>(ctx.with.lease);
      begin(ctx.id);
      try {
        await delay(ctx.with.ms, undefined, { signal: ctx.signal });
        if (ctx.with.fail !== undefined) throw new Error(ctx.with.fail);
      } finally {
        end(ctx.id);
      }
      return { outputs: { resource } };
    },
  });

  const spawnSleep = defineStep({
    uses: 'spawn-sleep',
    kind: 'task',
    description: 'Runs `sleep 60` through ctx.exec.',
    with: obj({}),
    async run(ctx) {
      const child = ctx.exec('sleep', ['60']);
      if (child.pid !== undefined) state.pids.push(child.pid);
      state.order.push(`start:${ctx.id}`);
      await child;
      return { outputs: {} };
    },
    cleanup: recordCleanup,
  });

  const programBytes = defineStep<{ size: number; exit?: number }>({
    uses: 'program-bytes',
    kind: 'source',
    description: 'A program (`head -c <size> /dev/zero`) writes `size` zero bytes to its stdout; `exit` makes it exit so after.',
    with: obj({ size: int, exit: int }, ['size']),
    run(ctx) {
      state.order.push(`start:${ctx.id}`);
      const script = `head -c ${ctx.with.size} /dev/zero; exit ${ctx.with.exit ?? 0}`;
      const sub = ctx.exec('sh', ['-c', script], { buffer: { stdout: false, stderr: true }, stdin: 'ignore' });
      return Promise.resolve({ output: checkedStdout(sub, (e) => new DbflowError(`program-bytes: ${(e as Error).message}`)) });
    },
  });

  const programCopy = defineStep({
    uses: 'program-copy',
    kind: 'transform',
    description:
      "Copies its input with `dd`: given its input program's stdout when it can, through dbflow otherwise; `delay_ms` waits first.",
    with: obj({ delay_ms: int }),
    async run(ctx) {
      state.order.push(`start:${ctx.id}`);
      if (ctx.with.delay_ms) await new Promise((resolve) => setTimeout(resolve, Number(ctx.with.delay_ms)));
      const pipe = ctx.inputPipe();
      const fail = (e: unknown): Error => new DbflowError(`program-copy: ${(e as Error).message}`);
      if (!pipe) {
        const sub = ctx.exec('dd', ['bs=64k', 'status=none'], { buffer: { stdout: false, stderr: true } });
        ctx.input.pipe(sub.stdin!);
        return { output: checkedStdout(sub, fail) };
      }
      state.piped.push(ctx.id);
      const sub = ctx.exec('dd', ['bs=64k'], { buffer: { stdout: false, stderr: true }, stderr: 'pipe', stdin: pipe.fd as 3 });
      pipe.given();
      void sub.then(
        ({ stderr }) => pipe.counted(Number(/^(\d+) bytes/m.exec(String(stderr))?.[1])),
        () => undefined,
      );
      return { output: checkedStdout(sub, fail) };
    },
  });

  const plugin = definePlugin({
    name,
    contract: '2.0',
    version: '0.0.0-test',
    steps: [
      noop,
      sleep,
      stubborn,
      fail,
      emit,
      bytes,
      upper,
      passthrough,
      collect,
      slowSink,
      lease,
      useLease,
      spawnSleep,
      programBytes,
      programCopy,
    ],
  });
  return { plugin, state };
}

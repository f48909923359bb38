// dbflow-plugin-hello: the smallest complete dbflow plugin, one step of each kind.
import { Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
// `dbflow` is the dbflow that loads the plugin, wherever the plugin is: dbflow resolves it to itself, so
// this package needs no copy of dbflow next to it to run (install it as a peer dependency for the types).
import { definePlugin, type StepDefinition } from 'dbflow';

const none = { type: 'object', additionalProperties: false } as const;

// A task: no stream in or out; its outputs are what `steps.<id>.outputs.greeting` reads.
const hello: StepDefinition<{ name: string }, { greeting: string }> = {
  uses: 'hello',
  kind: 'task',
  description: 'Greet someone; outputs the greeting.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, description: 'Who to greet.' } },
  },
  outputs: { type: 'object', additionalProperties: false, properties: { greeting: { type: 'string' } } },
  run(ctx) {
    const greeting = `Hello, ${ctx.with.name}!`;
    ctx.log.info(greeting);
    return Promise.resolve({ outputs: { greeting } });
  },
};

// A source: produces a byte stream that a transform or sink reads through `input:`.
const lines: StepDefinition<{ text: string; count?: number }> = {
  uses: 'lines',
  kind: 'source',
  description: 'Produce `count` lines of `text` (default 1).',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['text'],
    properties: { text: { type: 'string' }, count: { type: 'integer', minimum: 0 } },
  },
  run(ctx) {
    const { text, count = 1 } = ctx.with;
    const perChunk = Math.max(1, Math.floor(65536 / Buffer.byteLength(`${text}\n`)));
    function* generate(): Generator<Buffer> {
      for (let left = count; left > 0; left -= perChunk) {
        ctx.signal.throwIfAborted(); // a cancelled source fails its stream; ending it would truncate
        yield Buffer.from(`${text}\n`.repeat(Math.min(left, perChunk)));
      }
    }
    return Promise.resolve({ output: Readable.from(generate(), { objectMode: false }) });
  },
};

// A transform: reads `ctx.input`, passes the bytes on unchanged, and counts the newlines.
const lineCount: StepDefinition<Record<string, never>, { lines: number }> = {
  uses: 'line-count',
  kind: 'transform',
  description: 'Pass the input through unchanged; outputs its number of lines.',
  with: none,
  outputs: { type: 'object', additionalProperties: false, properties: { lines: { type: 'integer' } } },
  run(ctx) {
    let count = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) count++;
        done(null, chunk);
      },
    });
    // The count is known only once the stream has ended: `final` hands it over then.
    const final = finished(counter).then(() => ({ lines: count }));
    return Promise.resolve({ output: ctx.input.pipe(counter), final });
  },
  // Optional: undo partial work after a failure or cancel (here: only say so).
  cleanup(ctx) {
    ctx.log.info(`line-count cancelled in ${ctx.id}`);
    return Promise.resolve();
  },
};

// A sink: consumes its input to the end; `inputStats()` gives the edge's bytes and sha256.
const discard: StepDefinition<Record<string, never>, { bytes: number }> = {
  uses: 'discard',
  kind: 'sink',
  description: 'Read the input to the end and drop it.',
  with: none,
  outputs: { type: 'object', additionalProperties: false, properties: { bytes: { type: 'integer' } } },
  async run(ctx) {
    await finished(ctx.input.resume());
    const { bytes, sha256 } = await ctx.inputStats();
    ctx.log.info(`dropped ${bytes} bytes (sha256 ${sha256})`);
    return { outputs: { bytes } };
  },
};

// The plugin: what a pipeline's `plugins:` entry default-imports. `contract` is the version of the plugin
// contract it was written for (docs/plugins.md); dbflow refuses a plugin whose contract it does not implement.
export default definePlugin({ name: 'hello', contract: '2.0', version: '0.1.0', steps: [hello, lines, lineCount, discard] });

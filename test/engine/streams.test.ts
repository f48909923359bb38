// Stream chains: bytes and sha256 on every edge, back-pressure, failure of a whole chain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fakeBytes, sha256, upperBytes } from '../helpers/fake-plugin.js';
import { ofType, runYaml, statuses, stepState, yaml } from './helpers.js';

const MiB = 1024 * 1024;

describe('a stream chain source → transform → sink', () => {
  const size = 1_000_003;
  const chain = `  - { id: src, uses: bytes, with: { size: ${size}, chunk: 10000 } }
  - { id: up, uses: upper, input: src }
  - { id: sink, uses: collect, input: up }
`;

  it('delivers every byte, transformed, to the sink', async (t) => {
    const { result, state } = await runYaml(t, yaml(chain));
    assert.equal(result.status, 'success');
    const expected = upperBytes(fakeBytes(size));
    const got = state.collected.get('sink');
    assert.ok(got, 'the sink read its input');
    assert.equal(got.length, size);
    assert.ok(got.equals(expected), 'the sink received exactly the transformed bytes');
  });

  it('counts bytes and computes sha256 on every edge', async (t) => {
    const { result, events } = await runYaml(t, yaml(chain));
    const raw = fakeBytes(size);
    const upper = upperBytes(raw);
    assert.notEqual(sha256(raw), sha256(upper), 'the transform changes the bytes');
    assert.deepEqual(stepState(result, 'src').outputs, { size, bytes: size, sha256: sha256(raw) });
    assert.deepEqual(stepState(result, 'up').outputs, { case: 'upper', bytes: size, sha256: sha256(upper) });
    assert.deepEqual(stepState(result, 'sink').outputs, { received: size, input_bytes: size, input_sha256: sha256(upper) });
    const ends = new Map(ofType(events, 'step:end').map((e) => [e.id, e]));
    assert.equal(ends.get('src')?.bytes, size);
    assert.equal(ends.get('up')?.bytes, size);
  });

  it('runs the chain as one unit, every member at once', async (t) => {
    const { loaded, state } = await runYaml(t, yaml(chain));
    assert.deepEqual(
      loaded.plan.units.map((u) => u.key),
      ['src→sink'],
    );
    assert.deepEqual(state.order.slice(0, 3), ['start:src', 'start:up', 'start:sink']);
  });

  it('streams an empty source', async (t) => {
    const empty = chain.replace(`size: ${size}`, 'size: 0');
    const { result, state } = await runYaml(t, yaml(empty));
    assert.equal(result.status, 'success');
    assert.equal(state.collected.get('sink')?.length, 0);
    assert.deepEqual(stepState(result, 'src').outputs, { size: 0, bytes: 0, sha256: sha256(Buffer.alloc(0)) });
  });
});

describe('back-pressure', () => {
  it('keeps a fast source within a few MB of a slow sink', async (t) => {
    const total = 24 * MiB;
    const steps = `  - { id: src, uses: bytes, with: { size: ${total}, chunk: 65536 } }
  - { id: mid, uses: passthrough, input: src }
  - { id: sink, uses: slow-sink, input: mid, with: { delay_ms: 1 } }
`;
    const { result, state } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'success');
    assert.equal(state.consumed, total);
    assert.equal(state.produced, total);
    assert.ok(
      state.maxLead <= 2 * MiB,
      `the source ran at most 2 MiB ahead of the sink (it ran ${(state.maxLead / MiB).toFixed(2)} MiB ahead)`,
    );
  });
});

describe('a failure inside a chain', () => {
  const steps = `  - { id: src, uses: bytes, with: { size: 4000000, chunk: 65536 } }
  - { id: mid, uses: passthrough, input: src, with: { fail_after: 200000 } }
  - { id: sink, uses: collect, input: mid }
  - { id: after, uses: noop, needs: sink }
`;

  it('fails every member, naming the member where it started', async (t) => {
    const { result } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'failed');
    assert.deepEqual(statuses(result), { src: 'failed', mid: 'failed', sink: 'failed', after: 'skipped' });
    assert.equal(stepState(result, 'mid').error, 'passthrough: broke after 200000 bytes');
    assert.equal(stepState(result, 'src').error, 'stream chain failed at "mid": passthrough: broke after 200000 bytes');
    assert.equal(stepState(result, 'sink').error, 'stream chain failed at "mid": passthrough: broke after 200000 bytes');
  });

  it('calls the cleanup of every started member', async (t) => {
    const { state } = await runYaml(t, yaml(steps));
    assert.deepEqual([...state.cleanups].sort(), ['mid', 'sink', 'src']);
    assert.ok(state.produced < 4_000_000, 'the source stopped early');
  });

  it('fails the chain when the source breaks', async (t) => {
    const broken = `  - { id: src, uses: bytes, with: { size: 4000000, chunk: 65536, fail_after: 100000 } }
  - { id: sink, uses: collect, input: src }
`;
    const { result, state } = await runYaml(t, yaml(broken));
    assert.deepEqual(statuses(result), { src: 'failed', sink: 'failed' });
    assert.match(stepState(result, 'src').error ?? '', /^bytes: source broke after \d+ bytes$/);
    assert.deepEqual([...state.cleanups].sort(), ['sink', 'src']);
  });

  it('names the sink when it stops reading and fails after a while (a failed write), not the members whose streams it closed', async (t) => {
    const closed = `  - { id: src, uses: bytes, with: { size: 4000000, chunk: 65536 } }
  - { id: mid, uses: passthrough, input: src }
  - { id: sink, uses: collect, input: mid, with: { fail_after: 200000, cleanup_ms: 200 } }
`;
    const { result } = await runYaml(t, yaml(closed));
    assert.deepEqual(statuses(result), { src: 'failed', mid: 'failed', sink: 'failed' });
    assert.match(stepState(result, 'sink').error ?? '', /^collect: the write failed after \d+ bytes$/);
    assert.match(stepState(result, 'mid').error ?? '', /^stream chain failed at "sink": collect: the write failed after \d+ bytes$/);
    assert.match(stepState(result, 'src').error ?? '', /^stream chain failed at "sink": /);
    assert.match(result.error ?? '', /— "sink": collect: the write failed/);
  });

  it('ignores a member that finishes starting after the chain failed: its stream never runs, its failed late outputs are moot', async (t) => {
    const late = `  - { id: src, uses: bytes, with: { size: 4000000, chunk: 65536, fail_after: 0 } }
  - { id: mid, uses: passthrough, input: src, with: { start_ms: 300, final_error: 'late outputs failed' } }
  - { id: sink, uses: collect, input: mid }
`;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    t.after(() => process.off('unhandledRejection', onUnhandled));
    const { result, state } = await runYaml(t, yaml(late));
    await new Promise((resolve) => setTimeout(resolve, 500)); // past the member's start
    assert.equal(result.status, 'failed');
    assert.match(stepState(result, 'src').error ?? '', /^bytes: source broke after 0 bytes$/);
    assert.equal(state.collected.get('sink'), undefined, 'the sink never started');
    assert.deepEqual(unhandled, []);
  });
});

describe('what is hashed, and programs that read each other directly', () => {
  it('hashes the source and what the sink stores, not a middle edge nobody reads the hash of', async (t) => {
    const chain = `  - { id: src, uses: bytes, with: { size: 70000 } }
  - { id: up, uses: upper, input: src }
  - { id: mid, uses: passthrough, input: up }
  - { id: sink, uses: collect, input: mid }
`;
    const { result } = await runYaml(t, yaml(chain));
    assert.equal(result.status, 'success');
    const upper = upperBytes(fakeBytes(70000));
    assert.deepEqual(stepState(result, 'up').outputs, { case: 'upper', bytes: 70000 }, 'the middle edge: counted, not hashed');
    assert.equal(stepState(result, 'src').outputs?.sha256, sha256(fakeBytes(70000)));
    assert.equal(stepState(result, 'mid').outputs?.sha256, sha256(upper), 'the edge into the sink is hashed');

    const read = `${chain}  - { id: report, uses: noop, with: { log: "{{ steps.up.outputs.sha256 }}" } }\n`;
    const { result: r2, state } = await runYaml(t, yaml(read));
    assert.equal(r2.status, 'success');
    assert.equal(state.withs.get('report')?.log, sha256(upper), 'a template that reads the hash gets it');
  });

  it("hands a program's stdout to the next program, which reports the bytes; nothing passes through dbflow", async (t) => {
    const size = 3 * MiB + 17;
    const chain = `  - { id: src, uses: program-bytes, with: { size: ${size} } }
  - { id: copy, uses: program-copy, input: src }
  - { id: sink, uses: collect, input: copy }
`;
    const { result, state, events } = await runYaml(t, yaml(chain));
    assert.equal(result.status, 'success', stepState(result, 'copy').error);
    assert.deepEqual(state.piped, ['copy'], 'dd read the source program directly');
    assert.deepEqual(stepState(result, 'src').outputs, { bytes: size }, 'counted by the program that read it; no sha256');
    assert.ok(state.collected.get('sink')?.equals(Buffer.alloc(size)), 'every byte arrived');
    assert.equal(ofType(events, 'step:end').find((e) => e.id === 'src')?.bytes, size);

    // A template that reads the source's hash keeps the bytes passing through dbflow, hashed.
    const { result: r2, state: s2 } = await runYaml(
      t,
      yaml(`${chain}  - { id: report, uses: noop, with: { log: "{{ steps.src.outputs.sha256 }}" } }\n`),
    );
    assert.equal(r2.status, 'success');
    assert.deepEqual(s2.piped, []);
    assert.equal(s2.withs.get('report')?.log, sha256(Buffer.alloc(size)));
  });

  it('hands on every byte when the next program starts after the source has written (nothing was read into dbflow meanwhile)', async (t) => {
    const size = 2 * MiB + 5;
    const chain = `  - { id: src, uses: program-bytes, with: { size: ${size} } }
  - { id: copy, uses: program-copy, input: src, with: { delay_ms: 400 } }
  - { id: sink, uses: collect, input: copy }
`;
    const { result, state } = await runYaml(t, yaml(chain));
    assert.equal(result.status, 'success', stepState(result, 'copy').error);
    assert.deepEqual(state.piped, ['copy'], 'dd read the source program directly');
    assert.deepEqual(stepState(result, 'src').outputs, { bytes: size });
    assert.equal(state.collected.get('sink')?.length, size, 'every byte arrived, the first ones too');
  });

  it('fails the chain at the source when the program whose stdout was handed on exits non-zero', async (t) => {
    const chain = `  - { id: src, uses: program-bytes, with: { size: 100000, exit: 3 } }
  - { id: copy, uses: program-copy, input: src }
  - { id: sink, uses: collect, input: copy }
`;
    const { result, state } = await runYaml(t, yaml(chain));
    assert.equal(result.status, 'failed');
    assert.deepEqual(state.piped, ['copy']);
    assert.equal(stepState(result, 'src').status, 'failed');
    assert.match(stepState(result, 'src').error ?? '', /program-bytes: .*(exit code 3|code 3)/i);
  });
});

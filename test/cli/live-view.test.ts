// The live view at a real terminal: current throughput (0 B/s while a stream stalls), elapsed times, steps that never started.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { waitFor } from '../helpers/processes.js';
import { dbflowAtTerminal } from '../helpers/pty.js';
import { writeSlowPipeline } from '../helpers/slow-pipeline.js';
import { tmpDir } from '../helpers/tmp.js';

/** The terminal's output without colours and cursor movements, one line per line. */
// eslint-disable-next-line no-control-regex -- the escape sequences a terminal receives
const plainText = (screen: string): string => screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

describe('the live view', () => {
  it('shows the current rate and elapsed time of a stalled stream, and a step that never started as not started', async (t) => {
    const dir = tmpDir(t);
    const marker = path.join(dir, 'marker');
    mkdirSync(path.join(dir, 'target'));
    const file = writeSlowPipeline(dir, {
      name: 'stall',
      size: 4_194_304,
      chunk: 65_536,
      delayMs: 20,
      stall: { at: 1_048_576, ms: 60_000 },
      marker,
      to: `file://${dir}/target/artifact.bin`,
      steps: `  - id: after
    uses: sleep
    needs: [store]
    with: { ms: 10 }
`,
    });
    const { child, interrupt } = dbflowAtTerminal(['run', file, '--state-dir', path.join(dir, 'state')]);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    const screen = (): string => Buffer.concat(chunks).toString('utf8');
    try {
      const ended = (): boolean => child.exitCode !== null;
      await waitFor('the stream to stall', () => existsSync(`${marker}.stalled`), 30_000, ended);
      const moving = /running \S+ · [\d.]+ (?:KiB|MiB) at [1-9][\d.]* (?:B|KiB|MiB)\/s/;
      assert.match(plainText(screen()), /produce \(slow-bytes\)/);
      // While no byte moves, the rate falls to 0 within its window and the elapsed time goes on.
      const stalledAt = (): string[] => [
        ...new Set([...plainText(screen()).matchAll(/running (\S+) · [\d.]+ (?:KiB|MiB) at 0 B\/s/g)].map((m) => m[1]!)),
      ];
      await waitFor('two redraws of the stalled stream at 0 B/s', () => stalledAt().length >= 2 && stalledAt(), 30_000, ended);
      const text = plainText(screen());
      assert.match(text, moving, 'a rate while bytes moved');
      assert.match(text, /elapsed \d/, "the run's elapsed time");
      interrupt();
      const r = await child;
      const final = plainText(String(r.stdout));
      assert.equal(r.exitCode, 130, final);
      assert.match(final, /↓ after: not started \(cancelled/, 'the step that never started');
      assert.match(final, /produce: cancelled after \S+/);
      assert.doesNotMatch(final, /✖ after/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

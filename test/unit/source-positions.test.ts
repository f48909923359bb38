// Source positions: every node and key of a pipeline maps back to file:line:col.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FILE, load, locate, problems } from './helpers.js';

const text = `version: 1
name: positions
vars:
  nested:
    deep: [one, two]
steps:
  - id: src
    uses: bytes
    with:
      size: 10
      chunk: 5
  - id: sink
    uses: collect
    input: src
    with: {}
  - { id: flow, uses: sleep, with: { ms: 1 } }
`;

describe('source positions of a loaded pipeline', () => {
  it('points at values of nested block mappings', async () => {
    const { raw } = await load(text);
    assert.deepEqual(raw.pos(['steps', 0, 'with', 'chunk']), { file: FILE, line: 11, col: 14 });
    assert.deepEqual(raw.pos(['steps', 1, 'input']), { file: FILE, ...locate(text, 'src', 1) });
    assert.deepEqual(raw.pos(['name']), { file: FILE, line: 2, col: 7 });
  });

  it('points at keys, not values, with keyPos', async () => {
    const { raw } = await load(text);
    assert.deepEqual(raw.keyPos(['steps', 0, 'with', 'chunk']), { file: FILE, line: 11, col: 7 });
    assert.deepEqual(raw.keyPos(['steps', 1, 'input']), { file: FILE, line: 14, col: 5 });
    assert.deepEqual(raw.keyPos(['vars', 'nested', 'deep']), { file: FILE, line: 5, col: 5 });
  });

  it('points into sequences and flow collections', async () => {
    const { raw } = await load(text);
    assert.deepEqual(raw.pos(['vars', 'nested', 'deep', 1]), { file: FILE, ...locate(text, 'two') });
    assert.deepEqual(raw.pos(['steps', 2, 'with', 'ms']), { file: FILE, ...locate(text, '1 }') });
    assert.deepEqual(raw.keyPos(['steps', 2, 'uses']), { file: FILE, ...locate(text, 'uses: sleep') });
    // A sequence item starts where its content starts (after "- ").
    assert.deepEqual(raw.pos(['steps', 1]), { file: FILE, ...locate(text, 'id: sink') });
  });

  it('falls back to the nearest existing ancestor for a path that does not exist', async () => {
    const { raw } = await load(text);
    assert.deepEqual(raw.pos(['steps', 0, 'with', 'missing']), raw.pos(['steps', 0, 'with']));
    assert.deepEqual(raw.pos(['steps', 0, 'with']), { file: FILE, line: 10, col: 7 });
    assert.deepEqual(raw.pos(['steps', 9]), raw.pos(['steps']));
  });

  it('reports schema problems at the offending key or value', async () => {
    const bad = `version: 1
name: positions
steps:
  - id: src
    uses: bytes
    with: { size: 10, chnk: 5 }
  - id: sink
    uses: collect
    input: src
    with: {}
    retry:
      max_attempts: many
`;
    const found = await problems(bad);
    const unknown = found.find((p) => p.message.includes('"chnk"'));
    assert.ok(unknown, 'the unknown with key is reported');
    assert.deepEqual(unknown.pos, { file: FILE, ...locate(bad, 'chnk') });
    assert.match(unknown.message, /Did you mean "chunk"\?/);
    const type = found.find((p) => p.message.includes('max_attempts'));
    assert.ok(type, 'the wrong type is reported');
    assert.deepEqual(type.pos, { file: FILE, ...locate(bad, 'many') });
    assert.match(type.message, /must be an integer, not string "many"/);
  });

  it('reports an unclosed quote where the string starts, not at the end of the file', async () => {
    const bad = 'version: 1\nname: "unterminated\nsteps: []\n';
    const found = await problems(bad);
    assert.deepEqual(found, [
      { pos: { file: FILE, line: 2, col: 7 }, message: 'YAML syntax error: the string that starts here has no closing " (MISSING_CHAR)' },
    ]);
  });

  it('reports one YAML error per line, quoting a duplicate key', async () => {
    const bad = 'version: 1\nname: dup\nname: again\nsteps:\n  - id: a\n\tuses: noop\n';
    const found = await problems(bad);
    assert.deepEqual(
      found.map((p) => [p.pos.line, p.pos.col, p.message]),
      [
        [3, 1, 'YAML syntax error: key "name" is used twice in the same mapping (DUPLICATE_KEY)'],
        [6, 1, 'YAML syntax error: tabs are not allowed as indentation (TAB_AS_INDENT)'],
      ],
    );
  });

  it('keeps positions right after multi-line scalars and comments', async () => {
    const withBlock = `# a comment
version: 1
name: positions
description: |
  line one
  line two
steps:
  - id: waits   # trailing comment
    uses: sleep
    with:
      ms: -5
`;
    const [p] = await problems(withBlock);
    assert.ok(p);
    assert.deepEqual(p.pos, { file: FILE, ...locate(withBlock, '-5') });
    assert.match(p.message, /"with\.ms" of step "waits"/);
  });
});

// Did-you-mean: misspelled names get the closest known one, or the list of known names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closest, didYouMean } from '../../src/spec/suggest.js';
import { pipeline, problems } from './helpers.js';

describe('closest / didYouMean', () => {
  it('suggests the nearest candidate within the typo distance', () => {
    assert.equal(closest('compres', ['compress', 'encrypt', 'upload']), 'compress');
    assert.equal(closest('uplaod', ['compress', 'encrypt', 'upload']), 'upload');
    assert.equal(closest('COMPRESS', ['compress']), 'compress', 'case does not count');
  });

  it('suggests nothing when every candidate is too far', () => {
    assert.equal(closest('zzzzzz', ['compress', 'encrypt']), undefined);
    assert.equal(closest('x', []), undefined);
  });

  it('allows longer names more edits (a third of the length, at least two)', () => {
    assert.equal(closest('db', ['dbs', 'vars']), 'dbs');
    assert.equal(closest('rowcount_chek', ['rowcount_check']), 'rowcount_check');
    assert.equal(closest('rowcnt_chck', ['rowcount_check']), 'rowcount_check');
    assert.equal(closest('abcdef', ['uvwxyz']), undefined);
  });

  it('phrases a hit as a question and a miss as the known names', () => {
    assert.equal(didYouMean('dmp', ['dump', 'upload']), ' Did you mean "dump"?');
    assert.equal(didYouMean('zzzzzz', ['dump', 'upload']), ' Known: "dump", "upload".');
    assert.equal(didYouMean('zzzzzz', []), '');
    const many = ['a1', 'b2', 'c3', 'd4', 'e5', 'f6', 'g7', 'h8', 'i9'].map((s) => `${s}${s}${s}`);
    assert.match(didYouMean('zzzzzzzzz', many), /^ Known: "a1a1a1", .*"h8h8h8", …\.$/);
  });
});

describe('did-you-mean in pipeline errors', () => {
  it('on an unknown step type', async () => {
    const [p] = await problems(pipeline('  - id: a\n    uses: slep\n    with: { ms: 1 }\n'));
    assert.equal(p?.message, 'unknown step type "slep". Did you mean "sleep"?');
  });

  it('on an unknown key of a step', async () => {
    const [p] = await problems(pipeline('  - id: a\n    uses: sleep\n    with: { ms: 1 }\n    contine_on_error: true\n'));
    assert.equal(p?.message, 'unknown key "contine_on_error" in step "a". Did you mean "continue_on_error"?');
  });

  it("on an unknown key of a plugin step's with", async () => {
    const [p] = await problems(pipeline('  - id: a\n    uses: sleep\n    with: { ms: 1, fial: x }\n'));
    assert.equal(p?.message, 'unknown key "fial" in "with" of step "a". Did you mean "fail"?');
  });

  it('on a reference to an unknown step', async () => {
    const found = await problems(pipeline('  - id: first\n    uses: noop\n  - id: second\n    uses: noop\n    needs: [frist]\n'));
    assert.deepEqual(
      found.map((p) => p.message),
      ['step "second" needs unknown step "frist". Did you mean "first"?'],
    );
  });

  it('lists the known names when nothing is close', async () => {
    const [p] = await problems(pipeline('  - id: a\n    uses: sleep\n    with: { ms: 1 }\n    zzzzzzzz: 1\n'));
    assert.match(p?.message ?? '', /^unknown key "zzzzzzzz" in step "a"\. Known: "id", "uses", "with", /);
  });
});

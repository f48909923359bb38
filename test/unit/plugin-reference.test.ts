// docs/plugin-reference.md is generated from the code: it must say what the code says today.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { pluginReference, REFERENCE_FILE } from '../../scripts/plugin-reference.js';

test('docs/plugin-reference.md is up to date with the schemas and types (else run `npm run docs`)', async () => {
  const expected = await pluginReference();
  assert.ok(readFileSync(REFERENCE_FILE, 'utf8') === expected, 'docs/plugin-reference.md is out of date: run `npm run docs` and commit it');
  // It holds every first-party step and the contract's main interfaces.
  for (const heading of [
    '### `dump` (source)',
    '### `restore-test` (task)',
    '### `driver: postgres`',
    '### `DatabaseDriver`',
    '### `Storage`',
    '### `Codec`',
  ])
    assert.ok(expected.includes(heading), heading);
});

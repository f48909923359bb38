// Every first-party plugin's schemas compile under Ajv strict mode (the registry skips it for speed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinRegistry, Registry } from '../../src/index.js';

test('first-party plugins keep the plugin contract with strict schemas', async () => {
  const builtins = await builtinRegistry();
  assert.ok(builtins.plugins.length >= 5);
  const strict = new Registry();
  for (const { plugin } of builtins.plugins) strict.add(plugin, 'strict check');
  assert.deepEqual([...strict.steps.keys()].sort(), [...builtins.steps.keys()].sort());
});

test('a plugin whose schema strict mode refuses is rejected at load time', () => {
  const registry = new Registry();
  assert.throws(
    () =>
      registry.add(
        {
          name: 'bad',
          contract: '2.0',
          steps: [
            { uses: 'bad', kind: 'task', description: 'x', with: { type: 'object', propertiez: {} }, run: () => Promise.resolve({}) },
          ],
        },
        './bad.ts',
      ),
    /step "bad" of plugin "bad" \(\.\/bad\.ts\): its "with" schema is invalid: strict mode: unknown keyword: "propertiez"/,
  );
});

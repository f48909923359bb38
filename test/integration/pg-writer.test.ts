// The continuous writer that point-in-time recovery tests judge recovery by: its log of commits says the exact state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { commitsUpTo, commitTimes, createWriterTables, startWriter, stateAfter, stateOf } from '../helpers/pg-writer.js';
import { requirePostgres, scratchDatabase, throwawayPostgres, withPassword } from '../helpers/postgres.js';

void test('the writer logs exactly what committed: its tables equal the state its log computes', async (t) => {
  if (!(await requirePostgres(t))) return;
  const db = await scratchDatabase(t);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await createWriterTables(client);
  await client.end();
  const writer = await startWriter(db.url);
  await new Promise((r) => setTimeout(r, 1500));
  const commits = await writer.stop();
  assert.ok(commits.length > 20, `${commits.length} commits in 1.5 s`);
  assert.ok(
    commits.some((c) => c.deleted !== undefined),
    'some commits delete',
  );
  const state = await stateOf(db.url);
  assert.deepEqual(state, stateAfter(commits, commits.length));
  // A prefix is a different state: the comparison can fail.
  assert.notDeepEqual(state, stateAfter(commits, commits.length - 1));
});

void test('commit times place every commit before or after a target, as recovery to that time does', async (t) => {
  const server = await throwawayPostgres(t, { settings: ['track_commit_timestamp=on'] });
  if (!server) return;
  const client = new pg.Client({ connectionString: withPassword(server.url, server.password) });
  await client.connect();
  await createWriterTables(client);
  await client.end();
  const writer = await startWriter(server.url, { password: server.password, pauseMs: 5 });
  await new Promise((r) => setTimeout(r, 1000));
  const commits = await writer.stop();
  await commitTimes(server.url, commits, server.password);
  const times = commits.map((c) => c.committedMicros!);
  assert.ok(
    times.every((us, i) => i === 0 || us >= times[i - 1]!),
    'one connection commits in order',
  );
  const middle = commits[Math.floor(commits.length / 2)]!;
  const target = new Date(Number(middle.committedMicros! / 1000n));
  const kept = commitsUpTo(commits, target);
  assert.ok(kept > 0 && kept < commits.length, `${kept} of ${commits.length} commits at or before ${target.toISOString()}`);
  assert.ok(commits[kept - 1]!.committedMicros! <= BigInt(target.getTime()) * 1000n);
  assert.ok(commits[kept]!.committedMicros! > BigInt(target.getTime()) * 1000n);
});

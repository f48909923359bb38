// The fleet's pure parts: labels and the queue each set routes to, queue URLs, job ids, pipelines refused for the queue.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPipelineText } from '../../src/engine/load.js';
import { parseQueueUrl } from '../../src/ops/fleet/connection.js';
import { assertNoInlineSecret, jobId } from '../../src/ops/fleet/jobs.js';
import { formatLabels, labelsMatch, parseLabels, queueName } from '../../src/ops/fleet/labels.js';

void test('labels: parsed from k=v,…, one spelling per set, matched as a subset, routed to one queue per set', () => {
  assert.deepEqual(parseLabels(' region=eu ,network=billing,'), { region: 'eu', network: 'billing' });
  assert.deepEqual(parseLabels(undefined), {});
  for (const bad of ['region', 'region=', '=eu', 'a:b=c', 'region=eu west', 'k=v:w'])
    assert.throws(() => parseLabels(bad), /--labels: ".*" is not key=value/, bad);
  assert.equal(formatLabels({ region: 'eu', network: 'billing' }), 'network=billing,region=eu');
  assert.equal(queueName({}), 'runs');
  assert.equal(queueName({ region: 'eu', network: 'billing' }), queueName({ network: 'billing', region: 'eu' }));
  assert.equal(queueName({ region: 'eu', network: 'billing' }), 'runs.network=billing,region=eu');
  assert.ok(!queueName({ a: 'b' }).includes(':'), 'BullMQ refuses ":" in queue names');
  const worker = { region: 'eu', network: 'billing', disk: 'ssd' };
  assert.ok(labelsMatch({}, worker));
  assert.ok(labelsMatch({ region: 'eu', network: 'billing' }, worker));
  assert.ok(!labelsMatch({ region: 'us' }, worker));
  assert.ok(!labelsMatch({ gpu: 'yes' }, worker));
  assert.ok(!labelsMatch({ region: 'eu' }, {}));
});

void test('queue URLs: redis:// and rediss:// with user, password and database; the password never shown', () => {
  const t = parseQueueUrl('redis://backup:s3cr%3At@redis.internal:6380/2');
  assert.deepEqual(
    [t.options.host, t.options.port, t.options.username, t.options.password, t.options.db, t.options.maxRetriesPerRequest],
    ['redis.internal', 6380, 'backup', 's3cr:t', 2, null],
  );
  assert.equal(t.shown, 'redis://backup:***@redis.internal:6380/2');
  assert.ok(!t.shown.includes('s3cr'));
  assert.deepEqual(parseQueueUrl('rediss://:pw@h').options.tls, {});
  assert.equal(parseQueueUrl('rediss://:pw@h').shown, 'rediss://:***@h');
  assert.throws(() => parseQueueUrl('http://h:6379'), /must be a redis:\/\/ or rediss:\/\/ URL/);
  assert.throws(() => parseQueueUrl('redis://h/x'), /must be a number/);
  assert.throws(
    () => parseQueueUrl('not a url :pw@'),
    (err: Error) => /--queue must be a Redis URL/.test(err.message) && !err.message.includes(':pw@'),
  );
});

void test('job ids: one per pipeline and due time, the same on every daemon, without ":"', () => {
  const due = new Date('2026-12-06T02:00:00.000Z');
  assert.equal(jobId('nightly', due), `nightly@${due.getTime()}`);
  assert.equal(jobId('nightly', new Date(due.getTime())), jobId('nightly', due));
  assert.notEqual(jobId('nightly', new Date(due.getTime() + 1000)), jobId('nightly', due));
  assert.ok(!jobId('nightly', due).includes(':'));
});

void test('a pipeline with a password written into it is refused for the queue; one with its password in secrets is not', async () => {
  const pipeline = (url: string, extra = ''): string => `version: 1
name: inline
${extra}databases:
  app: { driver: postgres, url: "${url}" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
`;
  const inline = await loadPipelineText('inline.yaml', pipeline('postgres://backup:hunter22@db/app'), '/tmp', { checkEnvironment: false });
  assert.throws(
    () => assertNoInlineSecret(inline),
    (err: Error) => /has its password written in the pipeline/.test(err.message) && !err.message.includes('hunter22'),
  );
  const templated = await loadPipelineText(
    'secret.yaml',
    pipeline('postgres://backup:{{ secrets.db }}@db/app', 'secrets:\n  db: { env: DB_PASSWORD }\n'),
    '/tmp',
    { checkEnvironment: false },
  );
  assertNoInlineSecret(templated);
  const none = await loadPipelineText('none.yaml', pipeline('postgres://backup@db/app'), '/tmp', { checkEnvironment: false });
  assertNoInlineSecret(none);
});

// The notify plugin through the CLI: webhook, Slack and e-mail steps against real local servers (node:http,
// smtp-server) under `on_failure:` and `finally:`, their errors, and secrets kept out of everything.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runBackup, runRecordText, writePipeline, type BackupRun } from '../helpers/backup-run.js';
import { dbflow, hasStackTrace, repoRoot } from '../helpers/cli.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { tmpDir } from '../helpers/tmp.js';

/** The test plugin with the `fail` and `sleep` steps. */
const OPS_STEPS = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'ops-steps.ts');

const HOOK_TOKEN = 'hooktok-7f3a9c51e2';
const SMTP_USER = 'backup-bot';
const SMTP_PASSWORD = 'smtp-pw-Q8x2v9kL';
const ENV = { NOTIFY_HOOK_TOKEN: HOOK_TOKEN, NOTIFY_SMTP_PASSWORD: SMTP_PASSWORD };
const SECRETS = `secrets:
  hook_token: { env: NOTIFY_HOOK_TOKEN }
  smtp_password: { env: NOTIFY_SMTP_PASSWORD }
`;

/** What result.json says about a run and its steps. */
interface RunResultFile {
  status: string;
  error?: string;
  steps: Record<string, { status: string; error?: string }>;
}

interface NotifyRun extends BackupRun {
  cwd: string;
  result: RunResultFile;
  /** Every file of the run record, as text. */
  record: Record<string, string>;
}

// Writes `yaml` as pipeline.yaml in a fresh folder and runs it through the CLI.
async function run(t: TestContext, yaml: string): Promise<NotifyRun> {
  const cwd = tmpDir(t);
  writePipeline(cwd, yaml);
  const r = await runBackup(cwd, 'pipeline.yaml', ENV, 60_000);
  const result = JSON.parse(readFileSync(path.join(cwd, '.dbflow', 'runs', r.runId, 'result.json'), 'utf8')) as RunResultFile;
  return { ...r, cwd, result, record: runRecordText(cwd, r.runId) };
}

async function httpSink(t: TestContext): Promise<HttpSink> {
  const sink = await startHttpSink();
  t.after(() => sink.close());
  return sink;
}

async function smtpSink(t: TestContext): Promise<SmtpSink> {
  const sink = await startSmtpSink({ user: SMTP_USER, password: SMTP_PASSWORD });
  t.after(() => sink.close());
  return sink;
}

// A pipeline whose one step fails with a message that holds the hook token, notifying three ways.
function failingPipeline(http: HttpSink, smtp: SmtpSink): string {
  return `version: 1
name: nightly
plugins: ${JSON.stringify([OPS_STEPS])}
${SECRETS}steps:
  - id: backup
    uses: fail
    with: { message: "disk full on /backup; failed with {{ secrets.hook_token }}" }
on_failure:
  - id: hook
    uses: webhook
    with:
      url: "${http.origin}/hooks/{{ secrets.hook_token }}"
      headers: { X-Source: dbflow }
      body:
        text: "{{ pipeline.name }} failed at {{ run.failed_steps }}: {{ run.error }}"
        status: "{{ run.status }}"
        failed_steps: "{{ run.failed_steps }}"
        run: "{{ run.id }}"
  - id: chat
    uses: slack
    with:
      url: "${http.origin}/services/{{ secrets.hook_token }}"
      text: ":rotating_light: {{ pipeline.name }}: {{ run.error }}"
      username: dbflow
      icon_emoji: ":rotating_light:"
      channel: "#ops"
  - id: mail
    uses: email
    with:
      host: 127.0.0.1
      port: ${smtp.port}
      user: ${SMTP_USER}
      password: "{{ secrets.smtp_password }}"
      from: "dbflow <backup@example.com>"
      to: [oncall@example.com, dba@example.com]
      subject: "[dbflow] {{ pipeline.name }} failed"
      text: "Run {{ run.id }} failed.\\n{{ run.error }}\\n"
      timeout: 10s
`;
}

// The failing pipeline, run once against fresh servers.
async function failingRun(t: TestContext): Promise<{ http: HttpSink; smtp: SmtpSink; run: NotifyRun }> {
  const http = await httpSink(t);
  const smtp = await smtpSink(t);
  return { http, smtp, run: await run(t, failingPipeline(http, smtp)) };
}

void test('a failing run notifies by webhook, Slack and e-mail from on_failure, naming the step and the error', async (t) => {
  const { http, smtp, run: r } = await failingRun(t);
  assert.equal(r.exitCode, 1, r.stdout + r.stderr);
  assert.equal(r.result.status, 'failed');
  assert.equal(r.result.steps.backup?.status, 'failed');
  for (const id of ['hook', 'chat', 'mail'])
    assert.equal(r.result.steps[id]?.status, 'success', `${id}: ${JSON.stringify(r.result.steps[id])}`);

  const hook = http.requests.find((q) => q.path.startsWith('/hooks/'));
  assert.ok(hook, JSON.stringify(http.requests));
  assert.equal(hook.method, 'POST');
  assert.equal(hook.path, `/hooks/${HOOK_TOKEN}`, 'the secret reached the URL');
  assert.equal(hook.headers['content-type'], 'application/json');
  assert.equal(hook.headers['x-source'], 'dbflow');
  const body = hook.body as Record<string, unknown>;
  assert.equal(body.status, 'failed');
  assert.deepEqual(body.failed_steps, ['backup'], 'a whole template keeps its type');
  assert.equal(body.run, r.runId);
  assert.equal(body.text, 'nightly failed at backup: "backup" failed — "backup": disk full on /backup; failed with ***');

  const chat = http.requests.find((q) => q.path.startsWith('/services/'));
  assert.ok(chat);
  assert.equal(chat.method, 'POST');
  assert.deepEqual(chat.body, {
    text: ':rotating_light: nightly: "backup" failed — "backup": disk full on /backup; failed with ***',
    username: 'dbflow',
    icon_emoji: ':rotating_light:',
    channel: '#ops',
  });
  assert.equal(http.requests.length, 2);

  assert.deepEqual(
    smtp.logins.map((l) => [l.username, l.ok]),
    [[SMTP_USER, true]],
    'one AUTH, as the right user',
  );
  assert.equal(smtp.mails.length, 1);
  const mail = smtp.mails[0]!;
  assert.equal(mail.user, SMTP_USER);
  assert.equal(mail.from, 'backup@example.com');
  assert.deepEqual(mail.to, ['oncall@example.com', 'dba@example.com']);
  assert.equal(mail.headers.subject, '[dbflow] nightly failed');
  assert.equal(mail.text.trim(), `Run ${r.runId} failed.\n"backup" failed — "backup": disk full on /backup; failed with ***`);

  // One info line each, and the outputs in the run's events.
  const logs = Object.entries(r.record)
    .filter(([f]) => f.startsWith('logs'))
    .map(([, text]) => text)
    .join('\n');
  assert.match(logs, /INFO webhook: delivered \(HTTP 200\)/);
  assert.match(logs, /INFO slack: delivered \(HTTP 200\)/);
  assert.match(logs, /INFO email: sent to 2 recipients/);
  const ends = (r.record['events.jsonl'] ?? '')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; id?: string; outputs?: Record<string, unknown> })
    .filter((e) => e.type === 'step:end');
  assert.deepEqual(ends.find((e) => e.id === 'hook')?.outputs, { status: 200 });
  const mailOut = ends.find((e) => e.id === 'mail')?.outputs;
  assert.match(String(mailOut?.message_id), /^<.+@.+>$/);
  assert.deepEqual(mailOut?.accepted, ['oncall@example.com', 'dba@example.com']);
});

void test('secrets reach only where they are used: never a body, an e-mail, the output or the run record', async (t) => {
  const { http, smtp, run: r } = await failingRun(t);
  assert.equal(r.exitCode, 1);
  assert.equal(http.requests.length, 2);
  assert.equal(smtp.mails.length, 1);
  const places: Record<string, string> = { stdout: r.stdout, stderr: r.stderr };
  for (const q of http.requests) {
    places[`${q.path.split('/')[1]} body`] = q.raw;
    places[`${q.path.split('/')[1]} headers`] = JSON.stringify(q.headers);
  }
  places['e-mail (raw)'] = smtp.mails[0]!.raw;
  places['e-mail (decoded)'] = smtp.mails[0]!.text;
  for (const [file, text] of Object.entries(r.record)) places[`.dbflow/runs/${r.runId}/${file}`] = text;
  assert.ok(Object.keys(places).some((p) => p.endsWith('result.json')) && Object.keys(places).some((p) => p.includes('/logs/')));
  for (const [place, text] of Object.entries(places)) {
    for (const secret of [HOOK_TOKEN, SMTP_PASSWORD]) assert.ok(!text.includes(secret), `${secret} is in ${place}:\n${text}`);
  }
  // run.error was redacted, not dropped.
  assert.match(String((http.requests[0]!.body as { text: string }).text), /failed with \*\*\*$/);
});

void test('a successful run skips on_failure and runs finally, which sees run.status success', async (t) => {
  const http = await httpSink(t);
  const r = await run(
    t,
    `version: 1
name: nightly
plugins: ${JSON.stringify([OPS_STEPS])}
steps:
  - id: backup
    uses: sleep
    with: { ms: 1 }
on_failure:
  - id: alarm
    uses: webhook
    with: { url: "${http.origin}/alarm", body: { text: "{{ run.error }}" } }
finally:
  - id: report
    uses: webhook
    with:
      url: "${http.origin}/report"
      method: PUT
      body: { status: "{{ run.status }}", failed_steps: "{{ run.failed_steps }}", error: "{{ run.error }}" }
`,
  );
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  assert.equal(r.result.steps.alarm?.status, 'skipped');
  assert.equal(r.result.steps.report?.status, 'success');
  assert.equal(http.requests.length, 1, JSON.stringify(http.requests));
  const [report] = http.requests;
  assert.equal(report?.method, 'PUT');
  assert.equal(report.path, '/report');
  assert.deepEqual(report.body, { status: 'success', failed_steps: [], error: '' });
});

void test('a webhook that answers HTTP 500 fails its step with the status, never the URL or its token; retry: tries again', async (t) => {
  const http = await httpSink(t);
  // The answer echoes the path, as some services do: it must not reach the message either.
  http.answer({ status: 500, body: `internal error handling /hooks/${HOOK_TOKEN}` });
  const r = await run(
    t,
    `version: 1
name: nightly
${SECRETS}steps:
  - id: notify
    uses: webhook
    retry: { max_attempts: 2, delay: 10ms }
    with: { url: "${http.origin}/hooks/{{ secrets.hook_token }}", body: { text: hello } }
`,
  );
  assert.equal(r.exitCode, 1);
  assert.equal(http.requests.length, 2, 'the generic retry sent it twice');
  const error = r.result.steps.notify?.error ?? '';
  assert.match(
    error,
    new RegExp(
      `^webhook: the webhook at ${http.origin.replace(/\./g, '\\.')} answered HTTP 500 Internal Server Error \\("internal error handling …"\\); the service failed`,
    ),
  );
  const output = r.stdout + r.stderr;
  assert.match(output, /HTTP 500/);
  assert.ok(!hasStackTrace(output), output);
  for (const text of [output, error, r.result.error ?? '']) assert.ok(!text.includes('/hooks'), text);
  for (const text of [output, ...Object.values(r.record)]) assert.ok(!text.includes(HOOK_TOKEN), text);
});

void test('a webhook that does not answer within its timeout fails the step, saying so', async (t) => {
  const http = await httpSink(t);
  http.answer({ status: 200, delayMs: 20_000 });
  const r = await run(
    t,
    `version: 1
name: nightly
steps:
  - id: notify
    uses: webhook
    with: { url: "${http.origin}/slow", body: [1, 2], timeout: 300ms }
`,
  );
  assert.equal(r.exitCode, 1);
  assert.deepEqual(http.requests[0]?.body, [1, 2]);
  // Measured at the server, from the request's arrival (not the CLI's start, which a loaded machine slows).
  const closed = http.requests[0]?.closedAfterMs;
  assert.ok(
    closed !== undefined && closed < 10_000,
    `dbflow closed the request at its timeout, not at the answer 20 s later (closed after ${closed} ms)`,
  );
  assert.equal(
    r.result.steps.notify?.error,
    `webhook: the webhook at ${http.origin} did not answer within 300ms; raise "timeout", or check the service.`,
  );
  assert.ok(!hasStackTrace(r.stdout + r.stderr));
});

void test('an e-mail login the server refuses fails the step with its answer, never the password', async (t) => {
  const smtp = await smtpSink(t);
  const wrong = 'wrong-pw-N4m7z'; // written in the file, not a secret: the message itself must leave it out
  const r = await run(
    t,
    `version: 1
name: nightly
steps:
  - id: mail
    uses: email
    with: { host: 127.0.0.1, port: ${smtp.port}, user: ${SMTP_USER}, password: ${wrong}, from: a@example.com, to: b@example.com, subject: s, text: t }
`,
  );
  assert.equal(r.exitCode, 1);
  assert.deepEqual(
    smtp.logins.map((l) => [l.username, l.ok]),
    [[SMTP_USER, false]],
  );
  assert.equal(smtp.mails.length, 0);
  assert.equal(
    r.result.steps.mail?.error,
    `email: the SMTP server 127.0.0.1:${smtp.port} refused the login of user "${SMTP_USER}" (535 Invalid username or password); check "user" and "password".`,
  );
  const output = r.stdout + r.stderr;
  assert.ok(!hasStackTrace(output), output);
  for (const [place, text] of Object.entries({ output, ...r.record })) {
    if (place === 'pipeline.json') continue; // the pipeline as written
    for (const form of [wrong, Buffer.from(`\0${SMTP_USER}\0${wrong}`).toString('base64')])
      assert.ok(!text.includes(form), `${place}:\n${text}`);
  }
});

void test('bad options are reported at file:line:col before anything runs', async (t) => {
  const cwd = tmpDir(t);
  const yaml = `version: 1
name: nightly
plugins: ${JSON.stringify([OPS_STEPS])}
steps:
  - id: backup
    uses: sleep
    with: { ms: 1 }
on_failure:
  - id: mail
    uses: email
    with:
      host: smtp.example.com
      from: backup@example.com
      subject: failed
      text: "{{ run.error }}"
  - id: hook
    uses: webhook
    with: { url: "https://hooks.example.com/x", body: {}, method: GET }
`;
  writePipeline(cwd, yaml);
  const r = await dbflow(['run', 'pipeline.yaml'], { cwd });
  assert.equal(r.exitCode, 2, r.stdout + r.stderr);
  const output = r.stdout + r.stderr;
  const lines = yaml.split('\n');
  const mailWith = lines.findIndex((l, i) => l.trim() === 'with:' && lines[i - 1]?.includes('uses: email')) + 1;
  assert.match(output, new RegExp(`pipeline\\.yaml:${mailWith}:\\d+: .*missing required key "to"`));
  const hookLine = lines.findIndex((l) => l.includes('method: GET')) + 1;
  assert.match(output, new RegExp(`pipeline\\.yaml:${hookLine}:\\d+: .*must be one of "POST", "PUT", not "GET"`));
  assert.match(output, /2 problems in the pipeline; nothing was run/);
  assert.ok(!hasStackTrace(output));
});

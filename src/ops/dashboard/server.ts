// `dbflow serve`: the dashboard's HTTP server (fastify): overview, runs, a run's live page, backups, and the guarded actions.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Cron } from 'croner';
import { readRunJson } from '../../engine/run-record.js';
import { formatDuration } from '../../ui/format.js';
import type { Pipeline } from '../../spec/pipeline.js';
import { metricsText } from '../metrics.js';
import type { ListingMemo } from '../../repo/repository.js';
import { repositoryOf, RunIndex } from '../run-index.js';
import { isVerifiedBackup, newestWhere, type FinishedRun } from '../run-results.js';
import { currentRunIds, runOf, startDbflow, type DbflowEntry } from './actions.js';
import { bearer, crossSite, Sessions } from './auth.js';
import { runState, stages, stepLogs, stepText } from './run-view.js';
import { renderPage, type PageFrame } from './views.js';

/** A pipeline's standing, as `dbflow status` judges it. */
export interface PipelineStanding {
  file: string;
  pipeline?: Pipeline;
  state: string;
  rpoMs: number | null;
  ageMs: number | null;
  lastVerifiedAt: string | null;
  error?: string;
  archive: { database: string; lagMs: number | null; state: string }[];
}

/** A backup row of the Backups page. */
export interface BackupRow {
  url: string;
  time: string;
  pipeline: string;
  runId: string;
  size: string;
  databases: string[];
  status: string;
  verify: string;
  restoresTo: string;
}

export interface DashboardOptions {
  stateDir: string;
  /** Each pipeline's standing against its rpo (the logic of `dbflow status`), from the finished runs. */
  standings: (runs: FinishedRun[], now: number) => Promise<PipelineStanding[]>;
  /** The backups of a repository, newest first; the memo holds what earlier listings read. */
  backups: (repo: string, memo: ListingMemo) => Promise<BackupRow[]>;
  /** Stock commands restoring a run's artifacts (its result.json summary) without dbflow. */
  stockRestore: (artifacts: Record<string, unknown>[]) => string[];
  /** The token that opens a session; actions are off without it. */
  token?: string;
  actions: boolean;
  /** Read-only pages need a session too. */
  authAll: boolean;
  secureCookies: boolean;
  entry: DbflowEntry;
  log: (line: string) => void;
  /** A duration for people (as `dbflow status` prints it). */
  age: (ms: number) => string;
}

const SESSION_COOKIE = 'dbflow_session';
const STATUSES = ['success', 'failed', 'cancelled', 'killed', 'running'];
// Wrong tokens an address may give (sign-in form or bearer header) in the window; after that every token it gives is refused (429) until the window ends.
const WRONG_TOKENS = 5;
const WRONG_TOKEN_WINDOW_MS = 5 * 60_000;

/** The dashboard, ready to listen, and what warms it up before it does. */
export interface Dashboard {
  app: FastifyInstance;
  /**
   * Brings the run index up to date, lists every repository (reading the manifests the listing index lacks) and renders
   * each page, so that the first visitor does not wait for any of it; stops waiting after `ms` or on `signal` (the
   * work goes on).
   */
  warmUp: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** The dashboard, ready to listen. */
export async function createDashboard(o: DashboardOptions): Promise<Dashboard> {
  // Open event streams end with the server: a stop never waits for a run to finish.
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, forceCloseConnections: true });
  const sessions = new Sessions(o.token);
  const index = new RunIndex(o.stateDir, {
    onRebuild: (reason) => o.log(`the run index was damaged (${reason}): built again from the run records`),
  });
  app.addHook('onClose', () => index.close());
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  await app.register(fastifyRateLimit, { global: false });
  const wrongTokens = app.createRateLimit({ max: WRONG_TOKENS, timeWindow: WRONG_TOKEN_WINDOW_MS });
  await app.register(fastifyCsrf, {
    cookieKey: 'dbflow_csrf',
    cookieOpts: { httpOnly: true, sameSite: 'strict', secure: o.secureCookies, path: '/', signed: false },
    getToken: (req) => (req.body as Record<string, string> | undefined)?._csrf,
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'same-origin');
    reply.header(
      'content-security-policy',
      "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'",
    );
    return payload;
  });

  const signedIn = (req: FastifyRequest): boolean => sessions.valid(req.cookies[SESSION_COOKIE]);
  const frame = (req: FastifyRequest, reply: FastifyReply, title: string, nav?: string): PageFrame => ({
    title,
    ...(nav !== undefined && { nav }),
    signedIn: signedIn(req),
    ...(signedIn(req) && { csrf: reply.generateCsrf() }),
  });
  const html = (reply: FastifyReply, body: string, code = 200): FastifyReply =>
    reply.code(code).type('text/html; charset=utf-8').send(body);
  // A token given by a request (the sign-in form, a bearer header): right, wrong (counted against its address), or not
  // even compared because its address gave too many wrong ones lately (then a 429 with Retry-After is sent).
  const tryToken = async (req: FastifyRequest, reply: FastifyReply, given: string | undefined): Promise<'right' | 'wrong' | 'refused'> => {
    const seen = await wrongTokens(req, { increment: false });
    if (!seen.isAllowed && seen.remaining === 0) {
      o.log(`token refused unread from ${req.ip}: too many wrong tokens`);
      await reply
        .code(429)
        .header('retry-after', String(seen.ttlInSeconds))
        .type('text/plain')
        .send(`dbflow: too many wrong tokens from this address; try again in ${seen.ttlInSeconds} s.\n`);
      return 'refused';
    }
    if (sessions.tokenMatches(given)) return 'right';
    await wrongTokens(req);
    return 'wrong';
  };
  // Read-only pages, when they need a session too (or the token as a bearer header).
  const guardRead = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!o.authAll || signedIn(req)) return;
    const given = bearer(req.headers.authorization);
    if (given !== undefined) {
      const verdict = await tryToken(req, reply, given);
      if (verdict === 'refused' || verdict === 'right') return;
      o.log(`wrong bearer token from ${req.ip}`);
    }
    await reply.redirect(`/login?next=${encodeURIComponent(req.url)}`);
  };
  // Actions: enabled, from this site, and by a session with its CSRF token or a bearer token.
  const guardAction = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!o.actions)
      return void (await reply.code(403).type('text/plain').send('dbflow: actions are off; start dbflow serve with --actions.\n'));
    if (crossSite(req.headers))
      return void (await reply.code(403).type('text/plain').send('dbflow: refused: a request from another site.\n'));
    const given = bearer(req.headers.authorization);
    if (given !== undefined) {
      const verdict = await tryToken(req, reply, given);
      if (verdict === 'refused' || verdict === 'right') return;
      o.log(`wrong bearer token from ${req.ip}`);
      return void (await reply.code(401).type('text/plain').send('dbflow: that is not the dashboard token.\n'));
    }
    if (!signedIn(req)) return void (await reply.code(401).type('text/plain').send('dbflow: sign in first (the dashboard token).\n'));
    await new Promise<void>((resolve) => app.csrfProtection(req, reply, () => resolve()));
  };

  const sync = (): void => index.sync();
  // The backups the runs published (their folder URLs): the only ones the pages read or act on.
  const knownBackup = (url: string): boolean => {
    sync();
    return index.hasManifest(`${url}/manifest.json`);
  };
  // A repository's backups, listed now: only the manifests and verify records that changed since the last listing are
  // read. Requests that come while a listing of the repository is under way share it rather than list it again.
  const listing = new Map<string, Promise<BackupRow[]>>();
  const listBackups = (repo: string): Promise<BackupRow[]> => {
    let rows = listing.get(repo);
    if (!rows) {
      const memo = index.listingMemo(repo);
      rows = o.backups(repo, memo).then((r) => {
        memo.settle();
        return r;
      });
      listing.set(repo, rows);
      void rows.finally(() => listing.delete(repo)).catch(() => undefined);
    }
    return rows;
  };
  app.get('/', { preHandler: guardRead }, async (req, reply) => {
    sync();
    const runs = index.newestRuns();
    const now = Date.now();
    const last = newestWhere(runs, () => true);
    const verifiedRun = new Map([...newestWhere(runs, isVerifiedBackup)].map(([k, r]) => [k, r.runId]));
    const rank: Record<string, number> = { invalid: 0, stale: 1, never: 2, ok: 4, no_rpo: 5 };
    const age = o.age;
    const rows = (await o.standings(runs, now)).map((s) => {
      const p = s.pipeline;
      const lr = p ? last.get(p.name) : undefined;
      const archiveBad = s.archive.some((a) => a.state === 'stale' || (a.state === 'never' && s.rpoMs !== null));
      return {
        name: p?.name,
        file: s.file,
        error: s.error,
        state: s.state === 'ok' ? 'fresh' : s.state,
        stateLabel: { ok: 'fresh', stale: 'STALE', never: 'never', no_rpo: 'no rpo', invalid: 'INVALID' }[s.state] ?? s.state,
        rank: (rank[s.state] ?? 3) - (archiveBad && s.state === 'ok' ? 1 : 0),
        lastVerified: s.lastVerifiedAt?.replace(/\.\d+Z$/, 'Z') ?? null,
        lastVerifiedRun: p && s.lastVerifiedAt ? verifiedRun.get(p.name) : undefined,
        age: s.ageMs !== null ? age(s.ageMs) : '-',
        rpo: s.rpoMs !== null ? age(s.rpoMs) : 'none',
        schedule: p?.schedule ? `${p.schedule}${p.timezone ? ` (${p.timezone})` : ' (UTC)'}` : 'none',
        nextDue: p?.schedule ? nextDue(p) : '-',
        lastRun: lr && { runId: lr.runId, status: lr.status, when: new Date(lr.finishedAt).toISOString().replace(/\.\d+Z$/, 'Z') },
        archive: s.archive.map((a) => ({ database: a.database, lag: a.lagMs !== null ? age(a.lagMs) : 'never', state: a.state })),
      };
    });
    rows.sort((a, b) => a.rank - b.rank || String(a.name ?? a.file).localeCompare(String(b.name ?? b.file)));
    const f = frame(req, reply, 'Overview', 'overview');
    return html(
      reply,
      renderPage('overview', f, { pipelines: rows, now: new Date(now).toISOString(), actions: o.actions && f.csrf !== undefined }),
    );
  });

  app.get('/runs', { preHandler: guardRead }, async (req, reply) => {
    sync();
    const q = req.query as Record<string, string | undefined>;
    const page = Math.max(0, Number(q.page) || 0);
    const size = 50;
    const day = (v: string | undefined): number | undefined => (v && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : undefined);
    const until = day(q.until);
    const since = day(q.since);
    const { runs, total } = index.runs({
      ...(q.pipeline && { pipeline: q.pipeline }),
      ...(q.status && { status: q.status }),
      ...(since !== undefined && { since }),
      ...(until !== undefined && { until: until + 86_400_000 }),
      limit: size,
      offset: page * size,
    });
    const params = new URLSearchParams(Object.entries(q).filter(([k, v]) => k !== 'page' && v) as [string, string][]);
    params.set('page', String(page + 1));
    return html(
      reply,
      renderPage('runs', frame(req, reply, 'Runs', 'runs'), {
        filter: q,
        pipelineNames: index.pipelines(),
        statuses: STATUSES,
        total,
        more: total > size,
        from: page * size + 1,
        to: Math.min(total, (page + 1) * size),
        next: (page + 1) * size < total ? `/runs?${params.toString()}` : undefined,
        runs: runs.map((r) => ({
          ...r,
          started: new Date(r.startedAt).toISOString().replace(/\.\d+Z$/, 'Z'),
          duration: r.durationMs !== null ? formatDuration(r.durationMs) : '-',
        })),
      }),
    );
  });

  app.get('/runs/:id', { preHandler: guardRead }, async (req, reply) => {
    const { id } = req.params as { id: string };
    if (!/^[\w.-]+$/.test(id))
      return html(reply, renderPage('message', frame(req, reply, 'No such run'), { message: `no run "${id}"` }), 404);
    const state = runState(o.stateDir, id);
    if (!state)
      return html(reply, renderPage('message', frame(req, reply, 'No such run'), { message: `no run "${id}" in ${o.stateDir}` }), 404);
    const result = readRunJson(o.stateDir, id, 'result.json');
    const summary = (result?.summary ?? {}) as { artifacts?: Record<string, unknown>[]; verifications?: unknown[]; manifest?: string };
    const manifestUrl = summary.manifest;
    let manifest: string | undefined;
    if (manifestUrl?.startsWith('file://')) {
      try {
        manifest = JSON.stringify(JSON.parse(readFileSync(new URL(manifestUrl), 'utf8')), null, 2);
      } catch {
        manifest = '(the manifest cannot be read: moved or pruned)';
      }
    }
    const columns = stages(state.steps).map((col) =>
      col.map((s) => ({ ...s, ...stepText(s), domId: s.key.replace(/[^\w-]/g, '_'), after: s.after.join(', ') })),
    );
    return html(
      reply,
      renderPage('run', frame(req, reply, `Run ${id}`, 'runs'), {
        runId: id,
        pipeline: state.pipeline,
        status: state.status,
        started: state.startedAt ?? '',
        duration: typeof result?.duration_ms === 'number' ? `in ${formatDuration(result.duration_ms)}` : '',
        columns,
        verifications: summary.verifications ?? [],
        error: typeof result?.error === 'string' ? result.error : undefined,
        restore: state.status === 'success' ? o.stockRestore(summary.artifacts ?? []) : [],
        logs: stepLogs(
          o.stateDir,
          id,
          state.steps.map((s) => s.key),
        ),
        manifest,
        manifestUrl,
        repo: manifestUrl ? repositoryOf(manifestUrl) : undefined,
        live: !state.done,
      }),
    );
  });

  // Server-sent events: the run's step states whenever they change, until it ends.
  app.get('/runs/:id/events', { preHandler: guardRead }, (req, reply) => {
    const { id } = req.params as { id: string };
    if (!/^[\w.-]+$/.test(id)) return reply.code(404).send();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    let sent = '';
    const tick = (): void => {
      const state = runState(o.stateDir, id);
      if (!state) return;
      const result = state.done ? readRunJson(o.stateDir, id, 'result.json') : undefined;
      const verifications = (result?.summary as { verifications?: { check: string; ok: boolean }[] } | undefined)?.verifications ?? [];
      const data = JSON.stringify({
        status: state.status,
        done: state.done,
        verified: state.status === 'success' && verifications.some((v) => v.check === 'restore' && v.ok),
        steps: Object.fromEntries(
          state.steps.map((s) => {
            const t = stepText(s);
            return [s.key, { status: s.status, text: [t.bytes, t.rate, t.duration].filter(Boolean).join(' · ') }];
          }),
        ),
      });
      if (data !== sent) res.write(`event: state\ndata: ${data}\n\n`);
      sent = data;
      if (state.done) stop();
    };
    const timer = setInterval(tick, 400);
    const stop = (): void => {
      clearInterval(timer);
      res.end();
    };
    req.raw.on('close', () => clearInterval(timer));
    tick();
  });

  app.get('/backups', { preHandler: guardRead }, async (req, reply) => {
    sync();
    const repos = index.repositories();
    const q = req.query as Record<string, string | undefined>;
    const repo = q.repo && repos.includes(q.repo) ? q.repo : repos[0];
    let backups: BackupRow[] | undefined;
    let error: string | undefined;
    if (repo) {
      try {
        backups = await listBackups(repo);
      } catch (err) {
        error = `cannot list ${repo}: ${(err as Error).message}`;
      }
    }
    const f = frame(req, reply, 'Backups', 'backups');
    return html(
      reply,
      renderPage('backups', f, {
        repos,
        repo,
        error,
        backups: backups?.map((b) => ({ ...b, dbList: b.databases, databases: b.databases.join(', ') })),
        actions: o.actions && f.csrf !== undefined,
      }),
    );
  });

  app.get('/backups/restore', { preHandler: guardRead }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const backup = q.backup ?? '';
    const database = q.database ?? '';
    if (!knownBackup(backup))
      return html(
        reply,
        renderPage('message', frame(req, reply, 'No such backup'), { message: `no backup "${backup}" among the runs' backups` }),
        404,
      );
    let stock: string[];
    try {
      const manifest = JSON.parse(readFileSync(new URL(`${backup}/manifest.json`), 'utf8')) as { artifacts?: Record<string, unknown>[] };
      const folder = backup;
      stock = o.stockRestore(
        (manifest.artifacts ?? []).filter((a) => a.database === database).map((a) => ({ ...a, url: `${folder}/${String(a.path)}` })),
      );
    } catch {
      stock = ['(the manifest cannot be read here: see README "Restore without dbflow")'];
    }
    return html(
      reply,
      renderPage('restore', frame(req, reply, 'Restore a backup', 'backups'), {
        backup,
        database,
        dbflow: `dbflow restore ${shellArg(backup)} --database ${shellArg(database)} --to <target database URL> --create`,
        stock,
      }),
    );
  });

  app.get('/metrics', { preHandler: guardRead }, async (_req, reply) => {
    sync();
    const m = await metricsText(o.stateDir, undefined, index.finishedRuns());
    return reply.type(m.contentType).send(m.text);
  });

  app.get('/login', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const notice = o.token === undefined ? 'No token is set: sessions are off (start dbflow serve with --actions and a token).' : undefined;
    return html(reply, renderPage('login', { ...frame(req, reply, 'Sign in'), ...(notice && { notice }) }, { next: safeNext(q.next) }));
  });
  app.post('/login', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, string | undefined>;
    if (crossSite(req.headers)) return reply.code(403).type('text/plain').send('dbflow: refused: a request from another site.\n');
    const verdict = await tryToken(req, reply, body.token);
    if (verdict === 'refused') return reply;
    if (verdict === 'wrong') {
      o.log(`sign-in refused from ${req.ip}`);
      return html(
        reply,
        renderPage('login', { ...frame(req, reply, 'Sign in'), notice: 'That is not the token.' }, { next: safeNext(body.next) }),
        401,
      );
    }
    reply.setCookie(SESSION_COOKIE, sessions.open(), { httpOnly: true, secure: o.secureCookies, sameSite: 'strict', path: '/' });
    return reply.redirect(safeNext(body.next), 303);
  });
  // Signing out: the session's own form (CSRF-checked), whether actions are on or not.
  const guardSignOut = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (crossSite(req.headers))
      return void (await reply.code(403).type('text/plain').send('dbflow: refused: a request from another site.\n'));
    await new Promise<void>((resolve) => app.csrfProtection(req, reply, () => resolve()));
  };
  app.post('/logout', { preHandler: guardSignOut }, async (req, reply) => {
    sessions.close(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/', 303);
  });

  app.post('/actions/run', { preHandler: guardAction }, async (req, reply) => {
    const name = field(req, 'pipeline');
    const standing = (await o.standings([], Date.now())).find((s) => s.pipeline?.name === name);
    if (!standing) return reply.code(404).type('text/plain').send(`dbflow: no pipeline "${name}".\n`);
    const before = currentRunIds(o.stateDir);
    const pid = startDbflow(o.entry, ['run', path.resolve(standing.file), '--quiet', '--state-dir', o.stateDir]);
    o.log(`run now: ${name} (${standing.file}), pid ${pid}, by ${req.ip}`);
    const id = await runOf(o.stateDir, pid, before);
    if (wantsJson(req)) return reply.code(202).send({ pipeline: name, pid, run_id: id ?? null });
    return reply.redirect(id ? `/runs/${id}` : `/runs?pipeline=${encodeURIComponent(name)}`, 303);
  });

  app.post('/actions/verify', { preHandler: guardAction }, async (req, reply) => {
    const backup = field(req, 'backup');
    if (!knownBackup(backup)) return reply.code(404).type('text/plain').send(`dbflow: no backup "${backup}" among the runs' backups.\n`);
    // Its record shows on the Backups page once written: every listing reads the verify records that changed.
    const pid = startDbflow(o.entry, ['verify', backup, '--quiet', '--state-dir', o.stateDir]);
    o.log(`verify now: ${backup}, pid ${pid}, by ${req.ip}`);
    if (wantsJson(req)) return reply.code(202).send({ backup, pid });
    return html(
      reply,
      renderPage('message', frame(req, reply, 'Verifying'), {
        message: `dbflow verify ${backup} started; its result shows on the Backups page once it is done.`,
      }),
      202,
    );
  });
  const warmUp = async (ms: number, signal: AbortSignal): Promise<void> => {
    const headers = o.token !== undefined ? { authorization: `Bearer ${o.token}` } : undefined;
    const get = (url: string): Promise<unknown> => app.inject({ url, ...(headers && { headers }) });
    // Twice: the first pass builds what is missing, the second runs as a visitor's request will (its code hot, the
    // first pass's garbage collected).
    const pages = async (): Promise<void> => {
      for (let pass = 0; pass < 2; pass++) {
        await get('/');
        await get('/runs');
        for (const repo of index.repositories()) await get(`/backups?repo=${encodeURIComponent(repo)}`);
      }
    };
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      pages().catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', resolve, { once: true });
      }),
    ]);
    clearTimeout(timer);
  };
  return { app, warmUp };
}

function nextDue(p: Pipeline): string {
  try {
    const next = new Cron(p.schedule!, { ...(p.timezone !== undefined && { timezone: p.timezone }), paused: true }).nextRun();
    return next ? next.toISOString().replace(/\.\d+Z$/, 'Z') : 'never';
  } catch {
    return '?';
  }
}

function safeNext(next: string | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

// A string field of a form (or JSON) body; anything else is empty.
function field(req: FastifyRequest, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
}

function wantsJson(req: FastifyRequest): boolean {
  return String(req.headers.accept ?? '').includes('application/json');
}

function shellArg(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

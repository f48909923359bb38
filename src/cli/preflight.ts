// Checks before a first run (`run --dry-run`, `init`): each database reachable with the privileges a backup needs,
// each repository writable. Reads secrets and connects; runs no step and changes no database.
import { Readable } from 'node:stream';
import { toolContext } from './tool-context.js';
import { isUserError } from '../errors.js';
import type { LoadedPipeline } from '../engine/load.js';
import { newRunId } from '../engine/run-record.js';
import { resolveRunValues } from '../engine/run-values.js';
import { Redactor } from '../engine/secrets.js';
import { displayUrl } from './command-support.js';
import type { PreflightReport, PreflightUse } from '../plugins/types.js';
import { renderValue } from '../spec/templates.js';
import { uploadRepositories } from '../ops/lock.js';

/** One database's verdict: the driver's report, or why it could not be checked. */
export interface DatabaseCheck {
  name: string;
  driver: string;
  /** The URL without its password. */
  url: string;
  report?: PreflightReport;
  error?: string;
  /** The driver has no preflight check: only a run will tell. */
  unchecked?: boolean;
  /** What the pipeline asks of the database that its driver cannot do (join a coordinated snapshot). */
  unsupported?: string;
}

/** One repository prefix: writable, or why not. */
export interface RepositoryCheck {
  url: string;
  error?: string;
}

/** What a preflight found; `ok` when nothing stands in the way of a run. */
export interface PreflightResult {
  ok: boolean;
  /** Why the run could not even be prepared (a secret that cannot be read, say); nothing else was checked. */
  error?: string;
  databases: DatabaseCheck[];
  repositories: RepositoryCheck[];
}

/** What a preflight needs besides the pipeline. */
export interface PreflightOptions {
  env: Record<string, string | undefined>;
  signal: AbortSignal;
  log?: (message: string) => void;
}

/** Connects to every database of the pipeline and checks its privileges, and writes then deletes a probe in each repository. */
export async function preflight(loaded: LoadedPipeline, o: PreflightOptions): Promise<PreflightResult> {
  const { pipeline, registry } = loaded;
  const redactor = new Redactor();
  const id = newRunId();
  let values: ReturnType<typeof resolveRunValues>;
  try {
    values = resolveRunValues(pipeline, o.env, pipeline.dir, { id, started_at: new Date().toISOString(), dir: '' }, (s) => redactor.add(s));
  } catch (err) {
    return { ok: false, error: redactor.redact((err as Error).message), databases: [], repositories: [] };
  }
  const secretEnv = Object.values(pipeline.secrets).flatMap((s) => ('env' in s ? [s.env] : []));
  const { ctx, close } = await toolContext({
    registry,
    signal: o.signal,
    name: 'dry-run',
    secrets: values.hidden,
    secretEnv,
    log: (_level, message) => o.log?.(message),
  });
  const failure = (err: unknown): string => redactor.redact(err instanceof Error ? err.message : String(err));
  try {
    const databases = await Promise.all(
      Object.values(values.databases).map(async (db): Promise<DatabaseCheck> => {
        const check = { name: db.name, driver: db.driver, url: redactor.redact(displayUrl(db.url)) };
        const driver = registry.drivers.get(db.driver);
        if (!driver) return { ...check, error: `no driver "${db.driver}"` };
        const use = useOf(loaded, db.name);
        const unsupported =
          use.coordinated && !driver.participate
            ? `cannot take part in a coordinated snapshot (one cut): the ${db.driver} driver cannot hold one; set "coordinated: false" on the snapshot step or snapshot it in a step of its own`
            : undefined;
        if (!driver.preflight) return { ...check, unchecked: true, ...(unsupported && { unsupported }) };
        try {
          return { ...check, report: await driver.preflight(ctx, { db, use }), ...(unsupported && { unsupported }) };
        } catch (err) {
          // A driver's own DbflowError (from any copy of dbflow) or a connection error with a code: reported; a bug: thrown.
          if (!isUserError(err) && !(err instanceof Error && 'code' in err)) throw err;
          return { ...check, error: failure(err) };
        }
      }),
    );
    const settings = uploadSettings(loaded, values.context);
    const repositories = await Promise.all(
      uploadRepositories(loaded, o.env).map(async (url): Promise<RepositoryCheck> => {
        const probe = `${url.endsWith('/') ? url : `${url}/`}.dbflow-dry-run-${id}`;
        try {
          const storage = registry.storageFor(probe);
          await storage.put(probe, Readable.from([Buffer.from('dbflow dry-run probe: safe to delete\n')]), {
            signal: o.signal,
            ...(settings && { settings }),
          });
          await storage.delete(probe);
          return { url: redactor.redact(displayUrl(url)) };
        } catch (err) {
          return { url: redactor.redact(displayUrl(url)), error: failure(err) };
        }
      }),
    );
    const ok = databases.every((d) => !d.error && !d.unsupported && !d.report?.missing.length) && repositories.every((r) => !r.error);
    return { ok, databases, repositories };
  } finally {
    close();
  }
}

/** What the pipeline does with database `name`: in a coordinated snapshot (a snapshot step listing it with others, not `coordinated: false`), restore-tested, base backups of its server. */
export function useOf(loaded: LoadedPipeline, name: string): PreflightUse {
  const steps = loaded.pipeline.steps;
  const coordinated = steps.some((s) => {
    const listed = s.uses === 'snapshot' && Array.isArray(s.with.databases) ? (s.with.databases as unknown[]) : [];
    return listed.length > 1 && listed.includes(name) && s.with.coordinated !== false;
  });
  const baseBackup = steps.some((s) => (s.uses === 'basebackup' || s.uses === 'mariabackup') && s.with.database === name);
  const dumped = steps.some(
    (s) => s.uses === 'snapshot' && Array.isArray(s.with.databases) && (s.with.databases as unknown[]).includes(name),
  );
  // A base backup's restore-test runs in a throwaway instance: no scratch database on the server.
  const restoreTest = steps.some((s) => s.uses === 'restore-test') && (dumped || !baseBackup);
  return { coordinated, restoreTest, ...(baseBackup && { baseBackup }) };
}

// The storage settings of the first upload step, filled in as a run would (matrix and step outputs are not known yet).
function uploadSettings(loaded: LoadedPipeline, context: Record<string, unknown>): Record<string, unknown> | undefined {
  const storage = loaded.pipeline.steps.find((s) => s.uses === 'upload')?.with.storage;
  if (storage === undefined) return undefined;
  try {
    return renderValue(storage, context) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The lines that tell a person what a preflight found, each database and repository with ✔ or ✖. */
export function preflightLines(result: PreflightResult): string[] {
  if (result.error) return [`✖ cannot prepare a run: ${result.error}`];
  const lines: string[] = [];
  for (const d of result.databases) {
    const who = d.report ? [d.report.server, d.report.user && `as ${d.report.user}`].filter(Boolean).join(' ') : '';
    if (d.unsupported) lines.push(`✖ ${d.name} (${d.driver}, ${d.url}): ${d.unsupported}`);
    if (d.unchecked)
      lines.push(`? ${d.name} (${d.driver}, ${d.url}): the ${d.driver} driver has no preflight check; the first run will tell`);
    else if (d.error) lines.push(`✖ ${d.name} (${d.driver}, ${d.url}): cannot connect: ${d.error}`);
    else if (d.report?.missing.length) {
      lines.push(
        `✖ ${d.name} (${who || d.url}): ${d.report.missing.length} privilege${d.report.missing.length === 1 ? '' : 's'} missing; an administrator runs:`,
      );
      for (const m of d.report.missing) lines.push(`    ${m.grant}    -- ${m.need}`);
    } else if (!d.unsupported) lines.push(`✔ ${d.name} (${who || d.url}): can be backed up and restore-tested`);
    for (const n of d.report?.notes ?? []) lines.push(`    note: ${n}`);
  }
  for (const r of result.repositories)
    lines.push(r.error ? `✖ repository ${r.url}: not writable: ${r.error}` : `✔ repository ${r.url}: writable`);
  return lines;
}

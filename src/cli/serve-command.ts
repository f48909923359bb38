// `dbflow serve [dir]`: the web dashboard over the state folder and the pipelines in a folder.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadPipeline } from '../engine/load.js';
import { ExitCode, UsageError } from '../errors.js';
import { createDashboard, type BackupRow, type PipelineStanding } from '../ops/dashboard/server.js';
import { artifactBytes, isDamaged, listRepository } from '../repo/repository.js';
import { restorableRanges } from '../repo/restorable.js';
import type { Pipeline } from '../spec/pipeline.js';
import { stockRestoreCommand } from '../ui/summary.js';
import { formatBytes } from '../ui/format.js';
import { commandRegistry } from './command-registry.js';
import { interruptible } from './command-support.js';
import type { Io } from './io.js';
import { storageScope } from './repo-commands.js';
import { formatAge, pipelineFiles, pipelineStatuses } from './status-command.js';

// How long the start waits for the index and the listings to catch up before it listens anyway.
const WARM_UP_MS = 15_000;

export interface ServeCommandOptions {
  stateDir: string;
  listen: string;
  actions?: boolean;
  tokenEnv: string;
  tokenFile?: string;
  authAll?: boolean;
}

export async function serveCommand(dir: string, o: ServeCommandOptions, io: Io): Promise<number> {
  const { host, port } = parseListen(o.listen);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`${dir}: not a folder; dbflow serve shows the pipelines in a folder (default: pipelines).`);
  const token = readToken(o);
  if ((o.actions || o.authAll) && token === undefined)
    throw new UsageError(
      `${o.actions ? '--actions' : '--auth-all'} needs a token: set ${o.tokenEnv} or pass --token-file <file> (at least 16 characters; never on the command line).`,
    );
  const stateDir = path.resolve(o.stateDir);
  const log = (line: string): void => io.err(`${new Date().toISOString()} ${line}`);
  const registry = await commandRegistry(undefined);
  // Each pipeline file is loaded (parsed, validated) again only when it changed (its size, time or inode).
  const loaded = new Map<string, { stamp: string; pipeline: Promise<{ pipeline: Pipeline }> }>();
  const loadUnlessUnchanged = (file: string): Promise<{ pipeline: Pipeline }> => {
    const st = statSync(file, { throwIfNoEntry: false });
    const stamp = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '';
    let held = loaded.get(file);
    if (!held || held.stamp !== stamp || !st) {
      held = { stamp, pipeline: loadPipeline(file, { checkEnvironment: false }) };
      loaded.set(file, held);
    }
    return held.pipeline;
  };
  const scope = storageScope(registry);
  const { app, warmUp } = await createDashboard({
    stateDir,
    standings: async (runs, now): Promise<PipelineStanding[]> =>
      (await pipelineStatuses(pipelineFiles([dir]), stateDir, runs, now, undefined, loadUnlessUnchanged)).map(
        ({ status: s, pipeline }) => ({
          file: s.file,
          ...(pipeline && { pipeline }),
          state: s.state,
          rpoMs: s.rpo_ms,
          ageMs: s.age_ms,
          lastVerifiedAt: s.last_verified_at,
          ...(s.error !== undefined && { error: s.error }),
          archive: (s.archive ?? []).map((a) => ({ database: a.database, lagMs: a.lag_ms, state: a.state })),
        }),
      ),
    backups: async (repo, memo): Promise<BackupRow[]> => {
      const listing = await listRepository(scope, repo, memo);
      const ranges = await restorableRanges(scope, listing.backups, `${listing.repo}/wal`, registry.drivers);
      return listing.backups.map((b) => {
        const m = b.manifest;
        const range = ranges.get(b.url);
        return {
          url: b.url,
          time: m?.run.started_at.replace(/\.\d+Z$/, 'Z') ?? '?',
          pipeline: m?.pipeline.name ?? '?',
          runId: m?.run.id ?? '',
          size: m ? formatBytes(artifactBytes(m)) : '?',
          databases: m ? Object.keys(m.databases) : [],
          status: !m ? 'damaged' : isDamaged(b) ? 'damaged' : m.status === 'verified' ? 'verified' : 'unverified',
          verify: b.verify ? `${b.verify.ok ? 'ok' : 'FAILED'} ${b.verify.verified_at.replace(/\.\d+Z$/, 'Z')}` : 'never',
          restoresTo: range
            ? `${range.database}: any time from ${range.from} to ${range.to}${range.gap ? ` (the archive lacks ${range.gap})` : ''}`
            : m
              ? `its snapshot, ${m.run.started_at.replace(/\.\d+Z$/, 'Z')}`
              : '-',
        };
      });
    },
    stockRestore: (artifacts) =>
      artifacts.map((a) => {
        const artifact = a as unknown as Parameters<typeof stockRestoreCommand>[0];
        return stockRestoreCommand(artifact, (x, decoded) => {
          for (const d of registry.drivers.values()) {
            const line = d.stockRestore?.({ format: x.format, decoded, database: x.database });
            if (line) return line;
          }
          return undefined;
        });
      }),
    ...(token !== undefined && { token }),
    actions: o.actions === true,
    authAll: o.authAll === true,
    secureCookies: true,
    entry: { node: process.execPath, args: [...process.execArgv, process.argv[1]!], env: { ...process.env, [o.tokenEnv]: undefined } },
    log,
    age: formatAge,
  });
  // The signal handlers are in place before the address is announced: a SIGTERM from then on stops it cleanly.
  await interruptible(io, 'the dashboard', async (signal) => {
    await warmUp(WARM_UP_MS, signal);
    try {
      await app.listen({ host, port });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(
        `cannot listen on ${o.listen}: ${code === 'EADDRINUSE' ? 'the port is in use' : (err as Error).message}; pick another with --listen.`,
      );
    }
    const address = app.server.address();
    const shown =
      typeof address === 'object' && address
        ? `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`
        : o.listen;
    log(
      `dashboard on http://${shown}/ (state folder ${stateDir}, pipelines in ${dir}); actions ${o.actions ? 'on, behind the token' : 'off'}`,
    );
    if (!isLoopback(host))
      io.err(
        `dbflow: WARNING: the dashboard listens on ${host}, not on loopback: anyone who can reach this address sees ${o.authAll ? 'the sign-in page' : 'every pipeline, run and backup'}. Put it behind HTTPS (its session cookies are Secure) and consider --auth-all.`,
      );
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await app.close();
  });
  return ExitCode.ok;
}

/** `host:port` (IPv6 in brackets) or an error that says what is wrong. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[2]);
  if (!m || port > 65535)
    throw new UsageError(`--listen must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or [::1]:8080, not "${listen}".`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

// The token, from a file or an environment variable (never an argument): trimmed, at least 16 characters.
function readToken(o: ServeCommandOptions): string | undefined {
  let token: string | undefined;
  let from: string;
  if (o.tokenFile !== undefined) {
    from = o.tokenFile;
    try {
      token = readFileSync(o.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read the token file "${o.tokenFile}": ${(err as Error).message}.`);
    }
  } else {
    from = `$${o.tokenEnv}`;
    token = process.env[o.tokenEnv]?.trim() || undefined;
  }
  if (token !== undefined && token.length < 16)
    throw new UsageError(`the token in ${from} is too short: use at least 16 characters (e.g. openssl rand -hex 24).`);
  return token;
}

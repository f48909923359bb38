// Runs the CLI while sampling every program it starts (/proc/<pid>/cmdline and environ), and checks that none got a secret.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnDbflow, type CliResult } from './cli.js';
import { descendants, type ProcessInfo } from './processes.js';

/** A CLI run and every program seen below it while it ran. */
export interface WatchedRun extends CliResult {
  /** Every distinct (pid, argv) seen, with the environment read the first time. */
  programs: ProcessInfo[];
  /** How many times the process tree was walked. */
  samples: number;
  /** Every credential file seen in a scratch folder of dbflow while it ran. */
  credentials: CredentialSeen[];
}

/** A credential file (`<name>-XXXXXX/<name>` in a dbflow scratch folder; pgpass or my.cnf) and the modes seen. */
export interface CredentialSeen {
  file: string;
  mode: number;
  /** Of the folder holding it, and of the step's scratch folder around that. */
  folderMode: number;
  tmpdirMode: number;
}

const CREDENTIAL_NAMES = ['pgpass', 'my.cnf'];

// Credential files in dbflow's scratch folders right now (any run's: callers filter).
function credentialFiles(): CredentialSeen[] {
  const out: CredentialSeen[] = [];
  const mode = (p: string): number => statSync(p).mode & 0o777;
  for (const d of readdirSync(os.tmpdir()).filter((n) => n.startsWith('dbflow-'))) {
    const tmpdir = path.join(os.tmpdir(), d);
    try {
      for (const sub of readdirSync(tmpdir)) {
        const name = CREDENTIAL_NAMES.find((n) => sub.startsWith(`${n}-`));
        if (!name) continue;
        const folder = path.join(tmpdir, sub);
        const file = path.join(folder, name);
        out.push({ file, mode: mode(file), folderMode: mode(folder), tmpdirMode: mode(tmpdir) });
      }
    } catch {
      // not ours, or removed meanwhile
    }
  }
  return out;
}

/**
 * `dbflow <args>`, walking the CLI's process tree as often as it can until the CLI exits. Only
 * programs the CLI started are kept: not esbuild (tsx's compiler, which runs the CLI from source
 * here), not a child sampled between fork and exec (still a copy of the CLI's own node process).
 */
export async function runWatched(
  args: readonly string[],
  options: {
    cwd: string;
    env: Record<string, string | undefined>;
    timeoutMs?: number;
    /** Called after each sample with the programs below the CLI right now, and the CLI's pid. */
    onSample?: (programs: ProcessInfo[], pid: number) => void;
  },
): Promise<WatchedRun> {
  const sub = spawnDbflow(args, options);
  const timer = setTimeout(() => sub.kill('SIGKILL'), options.timeoutMs ?? 150_000);
  const seen = new Map<string, ProcessInfo>();
  const credentials = new Map<string, CredentialSeen>();
  let running = true;
  let samples = 0;
  const sampling = (async () => {
    while (running) {
      const now = descendants(sub.pid!);
      for (const p of now) {
        const key = `${p.pid} ${p.cmdline}`;
        if (!seen.has(key) || seen.get(key)!.environ === '') seen.set(key, p);
      }
      for (const c of credentialFiles()) credentials.set(c.file, c);
      options.onSample?.(now, sub.pid!);
      samples++;
      await sleep(2);
    }
  })();
  const done = await sub.finally(() => {
    running = false;
    clearTimeout(timer);
  });
  await sampling;
  const programs = [...seen.values()].filter((p) => p.comm !== 'esbuild' && p.exe !== process.execPath && p.exe !== '');
  return {
    exitCode: done.exitCode ?? -1,
    stdout: String(done.stdout),
    stderr: String(done.stderr),
    programs,
    samples,
    credentials: [...credentials.values()],
  };
}

// What every program may inherit from dbflow's environment (finding programs, home, locale, time zone), and PWD,
// which a shell sets for what it starts (Debian's pg_config is a shell script).
const INHERITABLE = /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|TZ|TMPDIR|LC_[A-Z_]+|PWD)$/;

/** Names of the variables a program's client library reads (libpq's PG*), or its starter sets; nothing else is set for it. */
const OWN_VARIABLES: Record<string, RegExp> = {
  pg_dump: /^PG[A-Z_]+$/,
  pg_restore: /^PG[A-Z_]+$/,
  pg_basebackup: /^PG[A-Z_]+$/,
  pg_receivewal: /^PG[A-Z_]+$/,
  // pg_ctl sets PGDATA and PG_GRANDPARENT_PID for the server it starts through sh, and, as every PostgreSQL program
  // does at start (set_pglocale_pgservice), PGSYSCONFDIR and PGLOCALEDIR in its own environment, which sh inherits.
  sh: /^(PGDATA|PG_GRANDPARENT_PID|PGSYSCONFDIR|PGLOCALEDIR)$/,
  postgres: /^(PGDATA|PG_GRANDPARENT_PID|PGSYSCONFDIR|PGLOCALEDIR)$/,
};

/**
 * Asserts that each program in `expected` was seen with a readable environment (so the check is
 * not vacuous), that no program seen holds any of `secrets` in its argv or environment, and that
 * each got only the variables it needs.
 */
export function assertNoSecrets(run: WatchedRun, secrets: Record<string, string>, expected: readonly string[]): void {
  const shown = `${run.stdout}\n${run.stderr}`;
  const names = run.programs.map((p) => `${p.comm}${p.environ ? '' : ' (environ unread)'}`);
  for (const program of expected) {
    assert.ok(
      run.programs.some((p) => p.comm === program && path.basename(p.exe) === program && p.environ.includes('PATH=')),
      `${program} was sampled with its environment (${run.samples} samples; seen: ${JSON.stringify(names)})\n${shown}`,
    );
  }
  for (const p of run.programs) {
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(!p.cmdline.includes(value), `argv of ${p.comm} (${p.pid}) holds ${name}: ${p.cmdline}`);
      assert.ok(!p.environ.includes(value), `the environment of ${p.comm} (${p.pid}) holds ${name}`);
    }
    const extra = p.environ
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(0, line.indexOf('=')))
      .filter((k) => !INHERITABLE.test(k) && !OWN_VARIABLES[p.comm]?.test(k));
    assert.deepEqual(extra, [], `${p.comm} (${p.pid}) got only what it needs`);
  }
}

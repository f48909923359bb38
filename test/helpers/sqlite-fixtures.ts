// Fixtures for the sqlite driver and file storage tests: contexts, temp dirs, databases, a live writer.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { DatabaseConfig, DatabaseDriver, StepContext, Storage } from '../../src/index.js';
import sqlitePlugin from '../../plugins/sqlite/index.js';
import fileStoragePlugin from '../../plugins/storage-file/index.js';

/** The sqlite driver, found through its plugin. */
export const sqliteDriver: DatabaseDriver = sqlitePlugin.drivers!.find((d) => d.name === 'sqlite')!;

/** The `file` storage, found through its plugin. */
export const fileStorage: Storage = fileStoragePlugin.storages!.find((s) => s.scheme === 'file')!;

/** A temp dir removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'dbflow-sqlite-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What a hand-built context carries. */
export interface ContextOptions<W> {
  tmpdir: string;
  databases?: Record<string, string>;
  with?: W;
  signal?: AbortSignal;
  options?: Record<string, unknown>;
}

/** A database entry of driver sqlite. */
export function sqliteConfig(name: string, url: string, options: Record<string, unknown> = {}): DatabaseConfig {
  return { name, driver: 'sqlite', url, options: { checksums: true, ...options } };
}

/** A minimal StepContext: tmpdir, signal, log, with, database(); everything else throws. */
export function makeContext<W = Record<string, unknown>>(o: ContextOptions<W>): StepContext<W> {
  const missing = (what: string) => (): never => {
    throw new Error(`test context has no ${what}`);
  };
  const lines: string[] = [];
  return {
    id: 'test',
    stepId: 'test',
    with: (o.with ?? {}) as W,
    matrix: {},
    run: { id: 'test-run', startedAt: new Date(), pipeline: 'test', dir: o.tmpdir, pipelineDir: process.cwd() },
    signal: o.signal ?? new AbortController().signal,
    log: { debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m) },
    tmpdir: o.tmpdir,
    get input(): Readable {
      return missing('input')();
    },
    inputPipe: () => undefined,
    inputStats: missing('inputStats'),
    chain: [],
    exec: missing('exec'),
    lease: missing('lease'),
    resource: missing('resource'),
    outputsOf: missing('outputsOf'),
    database(name: string) {
      const url = o.databases?.[name];
      if (!url) throw new Error(`test context has no database "${name}"`);
      return { config: sqliteConfig(name, url, o.options), driver: sqliteDriver };
    },
    databaseNames: () => Object.keys(o.databases ?? {}),
    storage: missing('storage'),
    codec: missing('codec'),
    progress: () => undefined,
    report: { database: () => undefined, coordination: () => undefined, artifact: () => undefined, verification: () => undefined },
  };
}

/** Sum of every account balance: a writer's transfers keep it at ACCOUNTS × START_BALANCE. */
export const ACCOUNTS = 500;
export const START_BALANCE = 1000;

/** A WAL database with `accounts` and `events` (~`events` × 300 bytes), for the live-writer tests. */
export function createLiveDatabase(file: string, events: number): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL);
           CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload BLOB, amount REAL, at TEXT);`);
  const acc = db.prepare('INSERT INTO accounts VALUES (?, ?, ?)');
  const ev = db.prepare('INSERT INTO events (kind, payload, amount, at) VALUES (?, randomblob(200), ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= ACCOUNTS; i++) acc.run(i, `owner-${i} ☃`, START_BALANCE);
    for (let i = 0; i < events; i++) ev.run(`kind-${i % 7}`, i / 3, new Date(1_700_000_000_000 + i * 1000).toISOString());
  })();
  db.close();
}

/** Sum of balances of the database at `file`. */
export function balanceSum(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return Number(db.prepare('SELECT sum(balance) FROM accounts').pluck().get());
  } finally {
    db.close();
  }
}

/** A process writing to a database in a loop: inserts, transfers between accounts, deletes. */
export interface Writer {
  /** Transactions committed so far (as last reported, in steps of 5). */
  commits(): number;
  /** Resolves once the writer committed at least `n` transactions in total. */
  committed(n: number): Promise<void>;
  /** Stops the writer; resolves with the number of transactions it committed. */
  stop(): Promise<number>;
}

const WRITER = `
const Database = require(process.argv[1]);
const db = new Database(process.argv[2], { timeout: 10000 });
db.pragma('journal_mode = WAL');
const accounts = ${ACCOUNTS};
const insert = db.prepare("INSERT INTO events (kind, payload, amount, at) VALUES ('live', randomblob(200), ?, datetime('now'))");
const move = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const drop = db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY random() LIMIT 3)');
const tx = db.transaction((n) => {
  for (let i = 0; i < 10; i++) insert.run(n + i / 10);
  const from = 1 + (n % accounts), to = 1 + ((n * 7 + 3) % accounts), amount = 1 + (n % 13);
  move.run(-amount, from);
  move.run(amount, to);
  drop.run();
});
let n = 0;
for (;;) {
  tx(++n);
  if (n % 5 === 0) process.stdout.write('committed ' + n + '\\n');
}
`;

/** Starts a writer process on the database at `file`. */
export function startWriter(file: string): Writer {
  const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const child = spawn(process.execPath, ['-e', WRITER, betterSqlite, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let count = 0;
  let stderr = '';
  const waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => {
    count = Number(line.split(' ')[1]);
    for (const w of waiters.filter((x) => x.n <= count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.on('exit', (code, signal) => {
    const err = new Error(`writer exited (${code ?? signal}) after ${count} commits: ${stderr}`);
    for (const w of waiters.splice(0)) w.reject(err);
  });
  return {
    commits: () => count,
    committed: (n) => (n <= count ? Promise.resolve() : new Promise((resolve, reject) => waiters.push({ n, resolve, reject }))),
    async stop() {
      child.kill('SIGTERM');
      await exited;
      return count;
    },
  };
}

/** Every byte of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

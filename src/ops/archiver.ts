// `dbflow archive`: a log receiver fills the spool; each complete file is stored (object, then record) and only then leaves
// the spool; the open file is stored every `flush`. What was stored already is never stored twice.
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DbflowError } from '../errors.js';
import type { LogArchive, LogFile, LogReceiver, Storage } from '../plugins/types.js';
import {
  ARCHIVE_MARKER,
  listArchive,
  piecePrefix,
  putJson,
  readMarker,
  readRecord,
  recordName,
  type LogRecord,
} from '../repo/log-archive.js';
import { writeArchiveState, type ArchiveState } from './archive-state.js';
import { digestFile, storeLogFile, storeLogPiece, type Encoder, type StoredOpen, type StoreTarget } from './log-store.js';

export interface ArchiverOptions {
  pipeline: string;
  database: string;
  driver: string;
  archive: LogArchive;
  /** Starts the receiver (settings checked): a failure of the first start ends the archiver. */
  receive: () => Promise<LogReceiver>;
  storage: Storage;
  /** The archive's root URL (`archive.<db>.to`). */
  root: string;
  /** The encoders' object suffix, e.g. `.zst.pgp`. */
  suffix: string;
  encoders: readonly Encoder[];
  flushMs: number;
  /** The database's folder in the state folder; the spool is its `spool/`. */
  dir: string;
  /** Aborted to stop: the receiver is stopped and what it received is stored before the archiver resolves. */
  signal: AbortSignal;
  /** Aborted to give up at once (a second interrupt): storage calls in flight are abandoned. */
  abandon?: AbortSignal;
  log: (level: 'debug' | 'info' | 'warn', line: string) => void;
  /** Called after each stored file (its record). */
  onStored?: (record: LogRecord) => void;
}

const TICK_MS = 250;
const MAX_BACKOFF_MS = 30_000;
// Pieces an open file is stored in before it is stored whole again (its record lists them all).
const MAX_PIECES = 256;

/** Runs until `signal` aborts, then stops the receiver and stores what it received; resolves after that last pass. */
export async function runArchiver(o: ArchiverOptions): Promise<void> {
  const io = o.abandon ?? new AbortController().signal;
  const spool = path.join(o.dir, 'spool');
  let receiver = await o.receive();
  const system = receiver.system;
  const folder = `${o.root}/${system}`;
  await ensureMarker(o);
  const target: StoreTarget = {
    storage: o.storage,
    folder,
    system,
    driver: o.driver,
    suffix: o.suffix,
    encoders: o.encoders,
    ...(o.archive.position && { position: o.archive.position.bind(o.archive) }),
    signal: io,
  };
  const listing = await listArchive(o.storage, folder);
  const stored = new Set(listing.records.keys());
  // What this archiver stored of the open file: an append-only log's next flush stores only what follows.
  let partial: StoredOpen | undefined;
  const state: ArchiveState = {
    pipeline: o.pipeline,
    database: o.database,
    system,
    folder,
    synced_at: new Date(0).toISOString(),
    pid: process.pid,
  };
  o.log('info', `archiving the log of database "${o.database}" (system ${system}) to ${folder}, open file every ${o.flushMs} ms`);

  // A receiver that fails is started again, with backoff, until the archiver stops.
  let running: LogReceiver | undefined = receiver;
  let backoff = 1000;
  const watch = (r: LogReceiver): void => {
    r.done.then(
      () => undefined,
      (err: unknown) => {
        if (o.signal.aborted) return;
        running = undefined;
        o.log('warn', `the log receiver stopped: ${(err as Error).message}; starting it again in ${backoff / 1000} s`);
        void restart();
      },
    );
  };
  const restart = async (): Promise<void> => {
    while (!o.signal.aborted && !running) {
      await sleep(backoff, undefined, { signal: o.signal }).catch(() => undefined);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      if (o.signal.aborted) return;
      try {
        receiver = await o.receive();
        running = receiver;
        backoff = 1000;
        o.log('info', 'the log receiver is running again');
        watch(receiver);
      } catch (err) {
        o.log('warn', `the log receiver cannot start: ${(err as Error).message}; trying again in ${backoff / 1000} s`);
      }
    }
  };
  watch(receiver);

  const storeComplete = async (name: string, file: LogFile): Promise<void> => {
    const local = path.join(spool, name);
    if (stored.has(file.name)) {
      const digest = await digestFile(local, io);
      const record = await readRecord(o.storage, `${folder}/${recordName(file.name)}`);
      if (record.raw.sha256 !== digest.sha256)
        throw new DbflowError(
          `"${file.name}" is stored already with other content (sha256 ${record.raw.sha256}, the spool's ${digest.sha256}); the spool copy is kept in ${spool}. Is another server with the same system identifier archived here?`,
        );
    } else {
      const { record } = await storeLogFile(target, local, file);
      o.log('info', `stored ${record.file} (${record.bytes} bytes${record.position ? `, up to ${record.position}` : ''})`);
      stored.add(file.name);
      o.onStored?.(record);
      state.newest_file = record.file;
      state.newest_stored_at = record.archived_at;
      if (record.position) state.position = record.position;
    }
    const open = `${file.name}.partial`;
    if (stored.has(open)) {
      // The record goes first: an object without a record is an unfinished write, a record without its object is damage.
      await o.storage.delete(`${folder}/${recordName(open)}`, { signal: io });
      await o.storage.delete(`${folder}/${open}${o.suffix}`, { signal: io });
      await deletePieces(open);
      stored.delete(open);
      if (partial?.record.file === open) partial = undefined;
    }
    rmSync(local, { force: true });
  };

  // The pieces of the open file `open` stored before, except those its current record (`keep`) lists.
  const deletePieces = async (open: string, keep?: LogRecord): Promise<void> => {
    const listed = new Set((keep?.pieces ?? []).map((p) => `${folder}/${p.object}`));
    for (const piece of await o.storage.list(`${folder}/${piecePrefix(open)}`, { signal: io }))
      if (!listed.has(piece.url)) await o.storage.delete(piece.url, { signal: io });
  };

  const storeOpen = async (name: string, file: LogFile): Promise<void> => {
    const local = path.join(spool, name);
    const same = partial?.record.file === `${file.name}.partial` ? partial : undefined;
    let record: LogRecord;
    if (o.archive.appendOnly && same && statSync(local).size >= same.size) {
      // Appended to since the last flush: only the new bytes (a bounded number of pieces, then whole again).
      const size = statSync(local).size;
      if (size === same.size) return;
      if ((same.record.pieces?.length ?? 1) < MAX_PIECES) {
        partial = await storeLogPiece(target, local, file, same, size);
        record = partial.record;
      } else record = await storeOpenWhole(local, file);
    } else {
      if (!o.archive.appendOnly && same && same.record.raw.sha256 === (await digestFile(local, io)).sha256) return;
      record = await storeOpenWhole(local, file);
    }
    o.log('debug', `stored ${record.file} (${record.raw.bytes} bytes${record.position ? `, up to ${record.position}` : ''})`);
    o.onStored?.(record);
    state.newest_file = record.file;
    state.newest_stored_at = record.archived_at;
    if (record.position) state.position = record.position;
  };

  // The open file stored whole (a new chain of pieces); pieces of an earlier chain go once its record no longer lists them.
  const storeOpenWhole = async (local: string, file: LogFile): Promise<LogRecord> => {
    const { record, open } = await storeLogFile(target, local, file);
    stored.add(record.file);
    const earlier = partial?.record.file === record.file ? partial.record.pieces : undefined;
    partial = open;
    if (earlier || o.archive.appendOnly) await deletePieces(record.file, record);
    return record;
  };

  // One pass over the spool: every complete file (history files first), then the open one when `flushOpen`.
  const pass = async (flushOpen: boolean): Promise<void> => {
    const started = new Date();
    const names = readdirSync(spool);
    const files = names
      .map((name) => ({ name, file: o.archive.classify(name, names) }))
      .filter((f): f is { name: string; file: LogFile } => f.file !== undefined);
    const complete = files
      .filter((f) => f.file.kind !== 'partial')
      .sort((a, b) => (a.file.kind === b.file.kind ? (a.name < b.name ? -1 : 1) : a.file.kind === 'history' ? -1 : 1));
    for (const f of complete) await storeComplete(f.name, f.file);
    const open = files.filter((f) => f.file.kind === 'partial').sort((a, b) => (a.name < b.name ? 1 : -1))[0];
    if (open && flushOpen) await storeOpen(open.name, open.file);
    if (flushOpen || !open) {
      state.synced_at = started.toISOString();
      writeArchiveState(o.dir, state);
    }
  };

  let lastFlush = 0;
  let failures = 0;
  while (!o.signal.aborted) {
    const flushOpen = Date.now() - lastFlush >= o.flushMs;
    try {
      await pass(flushOpen);
      if (flushOpen) lastFlush = Date.now();
      failures = 0;
    } catch (err) {
      if (o.signal.aborted) break;
      failures++;
      o.log('warn', `storing the log failed (${(err as Error).message}); the spool keeps it, trying again`);
    }
    await sleep(Math.min(TICK_MS * 2 ** Math.min(failures, 7), MAX_BACKOFF_MS), undefined, { signal: o.signal }).catch(() => undefined);
  }
  // A requested stop: the receiver flushes and ends, then everything it received is stored.
  await (running as LogReceiver | undefined)?.stop();
  await pass(true);
  o.log('info', `stopped; the log is stored up to ${state.newest_file ?? 'nothing yet'}${state.position ? ` (${state.position})` : ''}`);
}

// Marks the root as a log archive (listing and prune leave it alone).
async function ensureMarker(o: ArchiverOptions): Promise<void> {
  if (await readMarker(o.storage, o.root)) return;
  await putJson(
    o.storage,
    `${o.root}/${ARCHIVE_MARKER}`,
    { format: 1, driver: o.driver, pipeline: o.pipeline, database: o.database },
    o.abandon ?? new AbortController().signal,
  );
}

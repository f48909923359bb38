// What listings of a repository read (manifests, verify records), by object as listed: a listing reads again only the
// objects that are new or changed (another size or time), and forgets those it no longer sees.
import type Database from 'better-sqlite3';
import type { StoredObject } from '../plugins/types.js';
import type { ListingMemo, ReadManifest } from '../repo/repository.js';
import type { VerifyRecord } from '../repo/verify-record.js';

/** What was read from one object, with its size and time as listed then. */
export interface HeldRead {
  url: string;
  bytes: number;
  modified: string;
  value: unknown;
}

/** One listing's memo; `settle()` says what it read anew and which objects held before it no longer saw. */
interface OneListing extends ListingMemo {
  settle(): { fresh: HeldRead[]; gone: string[] };
}

/** The reads held in memory, by repository then object URL; loaded from the index file on a repository's first listing. */
export class ListingIndex {
  private readonly held = new Map<string, Map<string, HeldRead>>();
  // Reads under way, by object version: listings at the same time read an object once.
  private readonly pending = new Map<string, Promise<unknown>>();

  /** The table, in the run index's database. */
  static create(db: Database.Database): void {
    db.exec(`CREATE TABLE listed (url TEXT PRIMARY KEY, repo TEXT NOT NULL, bytes INTEGER NOT NULL, modified TEXT NOT NULL, value TEXT NOT NULL);
      CREATE INDEX listed_repo ON listed (repo);`);
  }

  /** What the index file holds for `repo`. */
  static load(db: Database.Database, repo: string): HeldRead[] {
    const rows = db.prepare('SELECT url, bytes, modified, value FROM listed WHERE repo = ?').all(repo) as (HeldRead & { value: string })[];
    return rows.map((r) => ({ ...r, value: JSON.parse(r.value) as unknown }));
  }

  /** Writes what a listing read anew and removes from the file what it no longer sees. */
  static save(db: Database.Database, repo: string, fresh: HeldRead[], gone: string[]): void {
    if (!fresh.length && !gone.length) return;
    const put = db.prepare('INSERT OR REPLACE INTO listed (url, repo, bytes, modified, value) VALUES (?, ?, ?, ?, ?)');
    const del = db.prepare('DELETE FROM listed WHERE url = ?');
    db.transaction(() => {
      for (const r of fresh) put.run(r.url, repo, r.bytes, r.modified, JSON.stringify(r.value));
      for (const url of gone) del.run(url);
    })();
  }

  /** A memo for one listing of `repo`; `load` gives what the index file holds, read on the repository's first listing. */
  memo(repo: string, load: () => HeldRead[]): OneListing {
    let held = this.held.get(repo);
    if (!held) this.held.set(repo, (held = new Map(load().map((r) => [r.url, r]))));
    const map = held;
    const seen = new Set<string>();
    const fresh: HeldRead[] = [];
    const dropped: string[] = [];
    const through = async <T>(o: StoredObject, read: () => Promise<T>, keepIt: (value: T) => boolean): Promise<T> => {
      seen.add(o.url);
      const had = map.get(o.url);
      // Without a time from the storage, a change of the same size would go unseen: such objects are always read.
      if (o.modified === undefined) return read();
      if (had && had.bytes === o.bytes && had.modified === o.modified) return had.value as T;
      const key = `${o.url}\n${o.bytes}\n${o.modified}`;
      let reading = this.pending.get(key) as Promise<T> | undefined;
      if (!reading) {
        this.pending.set(key, (reading = read()));
        void reading.finally(() => this.pending.delete(key)).catch(() => undefined);
      }
      const value = await reading;
      // Only what was read whole is kept: an unreadable object is read again next time.
      if (keepIt(value)) {
        const r = { url: o.url, bytes: o.bytes, modified: o.modified, value };
        map.set(o.url, r);
        fresh.push(r);
      } else if (map.delete(o.url)) dropped.push(o.url);
      return value;
    };
    return {
      manifest: (o, read) => through<ReadManifest>(o, read, (v) => v.manifest !== undefined),
      verify: (o, read) => through<VerifyRecord | undefined>(o, read, (v) => v !== undefined),
      settle: () => {
        const gone = [...map.keys()].filter((url) => !seen.has(url));
        for (const url of gone) map.delete(url);
        return { fresh, gone: [...gone, ...dropped] };
      },
    };
  }

  /** Drops everything held (the index file was built again). */
  forget(): void {
    this.held.clear();
  }
}

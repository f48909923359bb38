// The storages as a run's steps see them: a lease before the first write in a folder, a digest of every whole read.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '../errors.js';
import type { ArtifactRecord, EdgeStats, Storage } from '../plugins/types.js';
import type { RunLeases } from './run-lease.js';

/** A run's view of the storages, and what it read back. */
export class RunStorage {
  /** Size and sha256 of each object read to its end during the run, by URL. */
  private readonly readBack = new Map<string, EdgeStats>();
  private readonly wrapped = new Map<Storage, Storage>();

  constructor(
    private readonly storageFor: (url: string) => Storage,
    private readonly leases: RunLeases,
  ) {}

  /** The storage of `url`, wrapped for this run. */
  storage(url: string): Storage {
    const inner = this.storageFor(url);
    let outer = this.wrapped.get(inner);
    if (!outer) {
      outer = {
        scheme: inner.scheme,
        list: (...args: Parameters<Storage['list']>) => inner.list(...args),
        delete: (...args: Parameters<Storage['delete']>) => inner.delete(...args),
        ...(inner.stockRead && { stockRead: (u: string) => inner.stockRead!(u) }),
        put: async (u, body, options) => {
          // The body may fail while the lease is written; the storage's put reports that error when it reads the body.
          body.on('error', () => undefined);
          await this.leases.ensure(inner, u, options.settings);
          return inner.put(u, body, options);
        },
        get: async (u) => this.tap(u, await inner.get(u)),
      };
      this.wrapped.set(inner, outer);
    }
    return outer;
  }

  /**
   * Checks, before the manifest is published, that every artifact is stored with its recorded size
   * (listed) and sha256 (from a whole read during the run, such as the restore-test's, else read back now).
   * Throws an IntegrityError naming every artifact that is not.
   */
  async checkStored(artifacts: readonly ArtifactRecord[]): Promise<void> {
    const problems: string[] = [];
    for (const a of artifacts) {
      const storage = this.storageFor(a.url);
      const folder = a.url.slice(0, a.url.lastIndexOf('/') + 1);
      const found = (await storage.list(folder)).find((o) => o.url === a.url);
      if (!found) {
        problems.push(`${a.url} is missing`);
        continue;
      }
      if (found.bytes !== a.bytes) {
        problems.push(`${a.url} is ${found.bytes} bytes, ${a.bytes} were written`);
        continue;
      }
      const seen = this.readBack.get(a.url);
      const got = seen?.bytes === a.bytes && seen.sha256 === a.sha256 ? seen : await digestOf(await storage.get(a.url));
      if (got.bytes !== a.bytes || got.sha256 !== a.sha256)
        problems.push(
          `${a.url} reads back as ${got.bytes} bytes with sha256 ${got.sha256}, but ${a.bytes} bytes with sha256 ${a.sha256} were written`,
        );
    }
    if (problems.length) {
      throw new IntegrityError(
        `the stored artifacts are not what this run wrote, so no manifest was published (this run made no backup): ${problems.join('; ')}. Was something pruning or deleting in the repository?`,
      );
    }
  }

  // Passes the object through, and records its size and sha256 when it was read to its end.
  private tap(url: string, stored: Readable): Readable {
    const hash = createHash('sha256');
    let bytes = 0;
    const readBack = this.readBack;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        hash.update(chunk);
        done(null, chunk);
      },
      flush(done) {
        readBack.set(url, { bytes, sha256: hash.digest('hex') });
        done();
      },
    });
    stored.on('error', (err) => tap.destroy(err));
    tap.on('close', () => stored.destroy());
    return stored.pipe(tap);
  }
}

// Size and sha256 of a whole stream.
async function digestOf(stream: Readable): Promise<EdgeStats> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(stream, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      bytes += chunk.length;
      hash.update(chunk);
    }
  });
  return { bytes, sha256: hash.digest('hex') };
}

// The manifest of one backup: collected while the run goes, written last through the storage.
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FromSchema } from 'json-schema-to-ts';
import { DbflowError } from '../errors.js';
import type { ArtifactRecord, CoordinationRecord, ManifestReporter, SnapshotInfo, Storage, VerificationRecord } from '../plugins/types.js';
import { compile } from '../schema/validator.js';
import { backupSites, commonFolder, type BackupSite, type BackupSites } from './backup-sites.js';
import { manifestSchema } from './manifest-schema.js';

export const MANIFEST_NAME = 'manifest.json';

/** A manifest as stored. The records steps report (ArtifactRecord …) are the plugin contract's, written by hand: `build` checks they fit. */
export type Manifest = FromSchema<typeof manifestSchema>;

/** A plugin a run imported: who it is, where it came from, and what it provides. */
export type PluginRecord = NonNullable<Manifest['plugins']>[number];

/** Collects what steps report; `build` turns it into a manifest. */
export class ManifestBuilder implements ManifestReporter {
  readonly databases = new Map<string, SnapshotInfo>();
  readonly artifacts: ArtifactRecord[] = [];
  readonly verifications: VerificationRecord[] = [];
  readonly coordinations: CoordinationRecord[] = [];

  /** `mask` hides secrets in the text a step reports for people (why a copy failed). */
  constructor(private readonly mask: (text: string) => string = (t) => t) {}

  database(name: string, info: SnapshotInfo): void {
    this.databases.set(name, info);
  }
  coordination(record: CoordinationRecord): void {
    this.coordinations.push(record);
  }
  artifact(record: ArtifactRecord): void {
    const copies = record.copies?.map((c) => (c.error === undefined ? c : { ...c, error: this.mask(c.error) }));
    this.artifacts.push({ ...record, ...(copies && { copies }) });
  }
  verification(record: VerificationRecord): void {
    this.verifications.push(record);
  }

  /** The repositories the backup is published in (see backupSites); throws when its copies do not make whole ones. */
  sites(): BackupSites {
    return backupSites(this.artifacts);
  }

  /** The manifest of the backup as published in `site` (by default the first repository: where the artifacts' first copies are). */
  build(
    meta: { pipeline: Manifest['pipeline']; run: Manifest['run']; tools: Record<string, string>; plugins?: PluginRecord[] },
    site: BackupSite = { location: commonFolder(this.artifacts.map((a) => a.url)), artifacts: this.artifacts },
  ): Manifest {
    const base = site.location;
    const verified =
      this.verifications.length > 0 &&
      this.verifications.every((v) => v.ok) &&
      this.artifacts.every((a) => this.verifications.some((v) => v.database === a.database && v.ok));
    const manifest: Manifest = {
      format: 'dbflow-manifest',
      version: 1,
      pipeline: meta.pipeline,
      run: meta.run,
      status: verified ? 'verified' : 'unverified',
      databases: Object.fromEntries(
        [...this.databases].map(([name, i]) => [
          name,
          { driver: i.driver, server_version: i.serverVersion, position: i.position, taken_at: i.takenAt, tables: i.tables },
        ]),
      ),
      artifacts: site.artifacts.map(({ copies, ...a }) => {
        const failed = copies?.filter((c) => c.error !== undefined) ?? [];
        return {
          ...a,
          path: path.posix.relative(base, a.url),
          ...(copies && { copies: copies.filter((c) => c.error === undefined).map((c) => ({ url: c.url })) }),
          ...(failed.length && { failed_copies: failed.map((c) => ({ url: c.url, error: c.error! })) }),
        };
      }),
      verification: this.verifications,
      tools: meta.tools,
      ...(this.coordinations.length && { coordination: this.coordinations }),
      ...(meta.plugins?.length && { plugins: meta.plugins }),
    };
    const valid = compile(manifestSchema);
    if (!valid(manifest)) throw new DbflowError(`internal: manifest does not match its schema: ${JSON.stringify(valid.errors)}`);
    return manifest;
  }
}

/** The URL of the manifest of the backup whose folder is `base`. */
export function manifestUrl(base: string): string {
  return `${base}/${MANIFEST_NAME}`;
}

/** Writes the manifest last, atomically, through the storage of `base`: from then on the backup exists. Returns its URL. */
export async function publishManifest(manifest: Manifest, base: string, storageFor: (url: string) => Storage): Promise<string> {
  const url = manifestUrl(base);
  const storage = storageFor(url);
  const like = manifest.artifacts[0]?.url;
  await storage.put(url, Readable.from([Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)]), {
    signal: new AbortController().signal,
    ...(like && { like }),
  });
  return url;
}

// The backup layer's end of a run: once every step succeeded, the manifest is written, after every artifact was
// checked present with its size and sha256, and published beside them — in each repository that holds a copy of the
// whole backup. The engine calls it as its finisher.
import path from 'node:path';
import { DbflowError } from '../errors.js';
import type { Registry } from '../plugins/registry.js';
import type { Storage } from '../plugins/types.js';
import { pluginRecords, toolVersions } from '../engine/versions.js';
import { manifestUrl, publishManifest, type ManifestBuilder } from './manifest.js';
import type { RunStorage } from './run-storage.js';

/** Where a run notes the manifests it is about to write (so that a reaper can withdraw them if it stops between two), and that it is done. */
export interface PublishIntent {
  publishing(urls: readonly string[]): void | Promise<void>;
  published(): void | Promise<void>;
}

/** A run whose steps all succeeded, as the finisher sees it. */
export interface FinishedRun {
  pipeline: { name: string; sha256: string; file: string };
  run: { id: string; startedAt: Date; finishedAt: Date };
  registry: Registry;
  /** What the steps recorded: artifacts, verifications, coordinated cuts. */
  report: ManifestBuilder;
  /** The storages of the run, which know what it wrote. */
  storage: RunStorage;
  /** Where the run notes the manifests it is about to write, and that it is done (its record: see RunRecord.publishing). */
  intent?: PublishIntent;
}

/** What a run from a fleet adds to the manifest's `run`: the fencing token of its lease, its worker, its due time. */
export type FleetRunFacts = { fencing_token?: number; worker?: string; due_at?: string };

/**
 * Publishes the backup `run` made, if it made one: a manifest in each repository holding a copy of every artifact,
 * once every copy was checked; their URLs, the first repository's first. Throws when it cannot: nothing is published
 * then (a manifest already written in one repository is removed again when another one cannot be written).
 */
export async function publishBackup(finished: FinishedRun, fleet: FleetRunFacts = {}): Promise<string[] | undefined> {
  const { report, registry, pipeline, run } = finished;
  if (!report.artifacts.length) return undefined;
  const { complete, incomplete } = report.sites();
  if (!complete.length) {
    throw new DbflowError(
      `no repository holds a copy of every artifact (${incomplete.map((s) => `${s.location} lacks ${s.missing.join(', ')}`).join('; ')}), so no manifest was published.`,
    );
  }
  const meta = {
    pipeline: { name: pipeline.name, sha256: pipeline.sha256, file: path.basename(pipeline.file) },
    run: { id: run.id, started_at: run.startedAt.toISOString(), finished_at: run.finishedAt.toISOString(), ...fleet },
    tools: await toolVersions(registry),
    plugins: pluginRecords(registry),
  };
  const manifests = complete.map((site) => ({ site, manifest: report.build(meta, site) }));
  await finished.storage.checkStored(complete.flatMap((s) => s.artifacts));
  const storageFor = (url: string): Storage => registry.storageFor(url);
  const published: string[] = [];
  // Several manifests are not written at once: a run killed between two leaves this note for the reaper.
  await finished.intent?.publishing(complete.map((s) => manifestUrl(s.location)));
  try {
    for (const { site, manifest } of manifests) published.push(await publishManifest(manifest, site.location, storageFor));
    await finished.intent?.published();
  } catch (err) {
    const left: string[] = [];
    for (const url of published)
      await storageFor(url)
        .delete(url)
        .catch(() => left.push(url));
    if (!left.length) {
      await finished.intent?.published();
      throw err;
    }
    throw new DbflowError(
      `${(err as Error).message}; and the manifest already written at ${left.join(', ')} could not be removed again: delete it by hand, this run's backup is incomplete.`,
      { cause: err },
    );
  }
  return published;
}

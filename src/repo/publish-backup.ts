// The backup layer's end of a run: once every step succeeded, the manifest is written, after every artifact was
// checked present with its size and sha256, and published beside them. The engine calls it as its finisher.
import path from 'node:path';
import type { Registry } from '../plugins/registry.js';
import { pluginRecords, toolVersions } from '../engine/versions.js';
import { publishManifest, type ManifestBuilder } from './manifest.js';
import type { RunStorage } from './run-storage.js';

/** A run whose steps all succeeded, as the finisher sees it. */
export interface FinishedRun {
  pipeline: { name: string; sha256: string; file: string };
  run: { id: string; startedAt: Date; finishedAt: Date };
  registry: Registry;
  /** What the steps recorded: artifacts, verifications, coordinated cuts. */
  report: ManifestBuilder;
  /** The storages of the run, which know what it wrote. */
  storage: RunStorage;
}

/** What a run from a fleet adds to the manifest's `run`: the fencing token of its lease, its worker, its due time. */
export type FleetRunFacts = { fencing_token?: number; worker?: string; due_at?: string };

/** Publishes the backup `run` made, if it made one; the URL of its manifest. Throws when it cannot (nothing is published then). */
export async function publishBackup(finished: FinishedRun, fleet: FleetRunFacts = {}): Promise<string | undefined> {
  const { report, registry, pipeline, run } = finished;
  if (!report.artifacts.length) return undefined;
  const manifest = report.build({
    pipeline: { name: pipeline.name, sha256: pipeline.sha256, file: path.basename(pipeline.file) },
    run: { id: run.id, started_at: run.startedAt.toISOString(), finished_at: run.finishedAt.toISOString(), ...fleet },
    tools: await toolVersions(registry),
    plugins: pluginRecords(registry),
  });
  await finished.storage.checkStored(report.artifacts);
  return publishManifest(manifest, report.location(), (url) => registry.storageFor(url));
}

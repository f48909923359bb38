// The public API of dbflow: what plugin authors and tests import.
export * from './plugin-api.js';
export { loadPipeline, loadPipelineText, type LoadedPipeline, type LoadOptions } from './engine/load.js';
export { runPipeline, type RunOptions, type RunResult, type StepState } from './engine/engine.js';
export { publishBackup, type FinishedRun } from './repo/publish-backup.js';
export type { EngineEvent, RunStatus, RunSummary, StepStatus } from './engine/events.js';
export { listRuns, type RunListing } from './engine/run-record.js';
export { builtinRegistry } from './plugins/loader.js';
export { Registry } from './plugins/registry.js';
export { publishedPipelineSchema, pipelineSchema } from './schema/pipeline-schema.js';
export { manifestSchema } from './repo/manifest-schema.js';
export { MANIFEST_NAME, type Manifest } from './repo/manifest.js';
export { STEP_REF_FORMAT } from './schema/validator.js';
export { retain, isoWeekKey, type RetentionCandidate, type RetentionDecision, type RetentionPolicy } from './repo/retention.js';
export { acquireLock, lockHolder, lockFile, pipelineRepository, type HeldLock, type LockOwner, type LockRequest } from './ops/lock.js';
export { lockedRun, type LockedRunOptions } from './ops/locked-run.js';

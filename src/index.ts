// The public API of dbflow: what plugin authors and tests import.
export { defineDriver, definePlugin, defineStep } from './plugins/define.js';
export { PLUGIN_CONTRACT } from './plugins/contract.js';
export {
  checkedStdout,
  feedStdin,
  programInput,
  programOutputOf,
  programStage,
  stopReading,
  type ProgramInput,
  type ProgramOutput,
} from './plugins/process-stream.js';
export { credentialFile, type CredentialFile } from './plugins/credential-file.js';
export { programEnv } from './engine/program.js';
export { toolFailure, toolFailureError, type ToolFailure, type ToolSetting } from './plugins/tool-failure.js';
export type * from './plugins/types.js';
export {
  CancelledError,
  DbflowError,
  ExitCode,
  IntegrityError,
  isErrorKind,
  KeyError,
  LockedError,
  PluginError,
  RepositoryError,
  SpecError,
  StepError,
  TimeoutError,
  UsageError,
  type SourcePos,
  type SpecProblem,
} from './errors.js';
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
export { decodeArtifact, compareCounts, type CountDiff } from './repo/restore.js';
export { readArtifact, type ReadOptions } from './repo/read-artifact.js';
export { retain, isoWeekKey, type RetentionCandidate, type RetentionDecision, type RetentionPolicy } from './repo/retention.js';
export { parseDuration } from './spec/pipeline.js';
export { setLongTimeout, systemClock, timeoutSignal, type Clock, type LongTimer } from './engine/long-timer.js';
export { DURATION_PATTERN } from './schema/pipeline-schema.js';
export { shellQuote } from './plugins/shell-quote.js';
export { scratchDatabaseName, scratchPrefix } from './plugins/scratch-name.js';
export { acquireLock, lockHolder, lockFile, pipelineRepository, type HeldLock, type LockOwner, type LockRequest } from './ops/lock.js';
export { lockedRun, type LockedRunOptions } from './ops/locked-run.js';
export { withoutCredentials } from './ops/audit.js';
export { modesOf, objectModes, PRIVATE_MODES, type ObjectModes } from './plugins/object-mode.js';

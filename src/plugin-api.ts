// What plugins use of dbflow: definitions, program and stream helpers, errors, the types of the contract. The
// first-party plugins import this module only; third-party ones import 'dbflow', which holds it all.
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
  TimeoutError,
  UsageError,
  type SourcePos,
  type SpecProblem,
} from './errors.js';
export { decodeArtifact, compareCounts, type CountDiff } from './repo/restore.js';
export { readArtifact, type ReadOptions } from './repo/read-artifact.js';
export { DURATION_PATTERN, parseDuration } from './spec/duration.js';
export { setLongTimeout, systemClock, timeoutSignal, type Clock, type LongTimer } from './engine/long-timer.js';
export { shellQuote } from './plugins/shell-quote.js';
export { scratchDatabaseName, scratchPrefix } from './plugins/scratch-name.js';
export { withoutCredentials } from './ops/audit.js';
export { HELD_PROCESS_FILE } from './ops/reap.js';
export { freePort } from './plugins/free-port.js';
export { assertionError } from './plugins/assertion-error.js';
export { takeMark, type MarkOptions, type MarkTarget } from './ops/mark.js';
export { holdEveryBarrier, prepareEvery, type AllHeld, type BarrierHolder, type HoldOptions } from './plugins/barrier-loop.js';
export { keyProblem, visibleUrl } from './spec/object-key.js';
export { claimSpool, superviseReceiver, type ReceiverProgram, type SpoolClaim } from './plugins/spool-process.js';
export { modesOf, objectModes, PRIVATE_MODES, type ObjectModes } from './plugins/object-mode.js';

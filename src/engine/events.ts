// What the engine reports while it runs: the one feed for renderers, run records and tests.
import type { StepKind } from '../plugins/types.js';

export type StepStatus = 'success' | 'failed' | 'skipped' | 'cancelled';
export type RunStatus = 'success' | 'failed' | 'cancelled';

export type EngineEvent =
  | {
      type: 'run:start';
      time: string;
      runId: string;
      pipeline: string;
      dir: string;
      /** Every step instance as planned: `deps` are the instance keys it waits for (the plan's edges). */
      steps: { id: string; uses: string; kind: StepKind; unit: string; deps: string[] }[];
    }
  | { type: 'step:start'; time: string; id: string; attempt: number }
  | { type: 'step:retry'; time: string; id: string; attempt: number; delayMs: number; error: string }
  | { type: 'step:progress'; time: string; id: string; bytes: number; bytesPerSecond: number }
  | { type: 'step:log'; time: string; id: string; level: 'debug' | 'info' | 'warn'; message: string }
  | {
      type: 'step:end';
      time: string;
      id: string;
      status: StepStatus;
      durationMs: number;
      error?: string;
      reason?: string;
      outputs?: Record<string, unknown>;
      bytes?: number;
    }
  | { type: 'run:end'; time: string; runId: string; status: RunStatus; durationMs: number; error?: string; summary: RunSummary };

/** What a run produced, for the closing summary. */
export interface RunSummary {
  steps: Record<string, StepStatus>;
  /** `bytes` as stored (after every layer); `raw_bytes`: the dump before the first layer, when measured. */
  artifacts: {
    database: string;
    url: string;
    bytes: number;
    raw_bytes?: number;
    sha256: string;
    format: string;
    layers: { codec: string }[];
    /** A physical artifact's position (a base backup's LSNs and restore point), as in the manifest. */
    position?: Record<string, unknown>;
    /** The server's roles (a globals artifact), restored before the databases. */
    globals?: boolean;
    /** The other stored copies of the artifact (its upload wrote several at once). */
    copies?: string[];
  }[];
  verifications: { database: string; check: string; ok: boolean; detail?: string; duration_ms?: number }[];
  /** Coordinated snapshots: the step, its participants and how long commits were blocked. */
  coordination?: { step: string; coordinated: boolean; participants: string[]; blocked_ms?: number }[];
  manifest?: string;
  /** Every manifest, when the backup was published in several repositories (its artifacts copied to each). */
  manifests?: string[];
}

export type EventListener = (event: EngineEvent) => void;

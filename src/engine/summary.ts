// The closing summary of a run: how each step ended, and what the steps recorded (artifacts, checks, coordinated cuts).
import type { ManifestBuilder } from '../repo/manifest.js';
import type { RunSummary, StepStatus } from './events.js';
import type { Redactor } from './secrets.js';

/** The summary of a run whose steps ended so and recorded `report`. */
export function runSummary(steps: Record<string, StepStatus>, report: ManifestBuilder): RunSummary {
  return {
    steps,
    artifacts: report.artifacts.map((a) => ({
      database: a.database,
      url: a.url,
      bytes: a.bytes,
      ...(a.raw && { raw_bytes: a.raw.bytes }),
      sha256: a.sha256,
      format: a.format,
      layers: a.layers,
      ...(a.position && { position: a.position }),
      ...(a.globals && { globals: true }),
      ...(a.copies && { copies: a.copies.filter((c) => c.error === undefined && c.url !== a.url).map((c) => c.url) }),
    })),
    verifications: report.verifications.map((v) => ({
      database: v.database,
      check: v.check,
      ok: v.ok,
      ...(v.detail && { detail: v.detail }),
      ...(v.duration_ms !== undefined && { duration_ms: v.duration_ms }),
    })),
    ...(report.coordinations.length && {
      coordination: report.coordinations.map((c) => ({
        step: c.step,
        coordinated: c.coordinated,
        participants: c.participants,
        ...(c.blocked_ms !== undefined && { blocked_ms: c.blocked_ms }),
      })),
    }),
  };
}

/** What people see of a summary: the text in it (URLs, details) masked; names, counts and sizes as they are. */
export function shownSummary(summary: RunSummary, redactor: Redactor): RunSummary {
  return {
    ...summary,
    artifacts: summary.artifacts.map((a) => ({
      ...a,
      url: redactor.redact(a.url),
      ...(a.copies && { copies: a.copies.map((c) => redactor.redact(c)) }),
    })),
    verifications: summary.verifications.map((v) => ({ ...v, ...(v.detail && { detail: redactor.redact(v.detail) }) })),
    ...(summary.manifest && { manifest: redactor.redact(summary.manifest) }),
    ...(summary.manifests && { manifests: summary.manifests.map((m) => redactor.redact(m)) }),
  };
}

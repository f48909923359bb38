// Labels: what a worker offers (`--labels k=v,…`) and what a pipeline asks for (`runs_on.labels`), and the queue each set routes to.
import { UsageError } from '../../errors.js';
import { LABEL_PATTERN } from '../../schema/pipeline-schema.js';

export type Labels = Record<string, string>;

const LABEL = new RegExp(LABEL_PATTERN);

/** Parses `k=v,k2=v2`; a usage error names a malformed part. */
export function parseLabels(text: string | undefined): Labels {
  const out: Labels = {};
  for (const part of (text ?? '').split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    if (!LABEL.test(k) || !LABEL.test(v))
      throw new UsageError(
        `--labels: "${part}" is not key=value (letters, digits, ".", "_", "-"), e.g. --labels region=eu-west,network=billing.`,
      );
    out[k] = v;
  }
  return out;
}

/** `k=v,k2=v2`, keys sorted: one spelling per set. */
export function formatLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** True when the worker has every label the pipeline asks for. */
export function labelsMatch(wanted: Labels, offered: Labels): boolean {
  return Object.entries(wanted).every(([k, v]) => offered[k] === v);
}

/**
 * The BullMQ queue of a label set: `runs` for pipelines that may run anywhere, `runs.k=v,k2=v2` otherwise. A worker
 * listens on the queue of every set its labels include, and on no other: a job waits in its set's queue until a
 * matching worker takes it, so it never runs on a worker that lacks a label it asks for.
 */
export function queueName(labels: Labels): string {
  const set = formatLabels(labels);
  return set === '' ? 'runs' : `runs.${set}`;
}

// The `mark` step: a recovery mark over some of the pipeline's databases, recorded in a repository, as part of a run.
import { DbflowError, defineStep, DURATION_PATTERN, keyProblem, parseDuration, takeMark, visibleUrl } from '../../src/plugin-api.js';

interface MarkWith {
  databases: string[];
  to: string;
  barrier_timeout?: string;
}

interface MarkOutputs {
  name: string;
  time: string;
  blocked_ms: number;
  url: string;
}

export const markStep = defineStep<MarkWith, MarkOutputs>({
  uses: 'mark',
  kind: 'task',
  description:
    "Record a recovery mark: the same point in every listed database's log, taken while their commit barriers are held at once (milliseconds), stored in the repository; `dbflow restore --to-mark` restores all of them to it.",
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['databases', 'to'],
    properties: {
      databases: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string' } },
      to: {
        type: 'string',
        format: 'url',
        description: 'The repository the mark is recorded in (under dbflow-marks/), e.g. "{{ vars.repo }}".',
      },
      barrier_timeout: {
        type: 'string',
        pattern: DURATION_PATTERN,
        default: '5s',
        description: 'How long to keep trying to hold every barrier at once before the step fails (nothing recorded).',
      },
    },
  },
  outputs: {
    type: 'object',
    properties: {
      name: { type: 'string', description: 'The mark, e.g. dbflow_mark_20261206T042905747Z.' },
      time: { type: 'string' },
      blocked_ms: { type: 'number', description: 'The longest time commits were blocked on any participant.' },
      url: { type: 'string', description: "The mark's record." },
    },
  },
  async run(ctx) {
    const targets = ctx.with.databases.map((name) => ({ name, ...ctx.database(name) }));
    const repo = ctx.with.to.replace(/\/+$/, '');
    const problem = keyProblem(`${repo}/x`);
    if (problem)
      throw new DbflowError(
        `step "${ctx.id}": the repository "${visibleUrl(repo)}" ${problem}, which could put the mark outside it; nothing was marked. Check the values that fill its template.`,
      );
    const { record, url } = await takeMark(ctx, targets, {
      pipeline: ctx.run.pipeline,
      repo,
      storage: ctx.storage(repo),
      barrierTimeoutMs: parseDuration(ctx.with.barrier_timeout ?? '5s'),
    });
    ctx.log.info(`mark ${record.name} over ${ctx.with.databases.join(', ')}: commits blocked for at most ${record.blocked_ms} ms`);
    return { outputs: { name: record.name, time: record.time, blocked_ms: record.blocked_ms, url } };
  },
});

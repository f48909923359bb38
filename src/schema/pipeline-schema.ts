// The pipeline schema, version 1: the one source of schemas/pipeline.schema.json and, at compile time, of the document's type.
import type { FromSchema } from 'json-schema-to-ts';
import type { JsonSchema, StepDefinition } from '../plugins/types.js';
import { DURATION_PATTERN } from '../spec/duration.js';

/** A `runs_on` label's key or value (also a part of a queue name: no `:`). */
export const LABEL_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';
export const STEP_ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';

const duration = { type: 'string', pattern: DURATION_PATTERN, description: 'A duration: 500ms, 30s, 5m, 2h, 1d.' } as const;

const step = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'uses'],
  properties: {
    id: { type: 'string', pattern: STEP_ID_PATTERN, description: 'Unique step id (letters, digits, _).' },
    uses: { type: 'string', minLength: 1, description: 'The step type, e.g. dump, compress, upload.' },
    with: { type: 'object', description: "The step type's options; checked against its plugin's schema." },
    needs: {
      description: 'Steps that must finish first.',
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, uniqueItems: true }],
    },
    input: { type: 'string', description: 'The step whose byte stream this step reads (a streaming edge).' },
    matrix: {
      type: 'object',
      description: 'Runs the step once per combination of values.',
      minProperties: 1,
      additionalProperties: {
        anyOf: [
          { type: 'array', minItems: 1 },
          { type: 'string', pattern: '^\\s*\\{\\{.*\\}\\}\\s*$' },
        ],
      },
    },
    if: {
      enum: ['success()', 'failure()', 'always()', 'cancelled()'],
      description: 'When the step runs: success() (default), failure(), always(), cancelled().',
    },
    continue_on_error: { type: 'boolean', description: 'A failure of this step does not fail the run.' },
    retry: {
      type: 'object',
      additionalProperties: false,
      required: ['max_attempts'],
      properties: {
        max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
        backoff: { enum: ['constant', 'linear', 'exponential'] },
        delay: duration,
      },
    },
    timeout: duration,
  },
} as const;

// Exactly one of env and file: what min/maxProperties 1 say, and FromSchema cannot infer from them (SecretSource below says it).
const secretSource = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    env: { type: 'string', minLength: 1, description: 'Environment variable holding the secret.' },
    file: { type: 'string', minLength: 1, description: 'File holding the secret.' },
  },
} as const;

/** `expect:` of a data assertion: equal, or a comparison with a number. */
export const EXPECT_PATTERN = '^(equal|(=|!=|<|<=|>|>=) ?-?[0-9]+(\\.[0-9]+)?)$';

// One `archive:` entry: where a database's log goes, and how it is encoded (the compress and encrypt steps' `with`).
const archiveEntry = {
  type: 'object',
  additionalProperties: false,
  required: ['to'],
  properties: {
    to: { type: 'string', format: 'url', description: 'Storage URL prefix of the log archive, e.g. "{{ vars.repo }}/wal".' },
    compress: { type: 'object', description: "As the compress step's `with`, e.g. { algorithm: zstd, level: 3 }." },
    encrypt: { type: 'object', description: "As the encrypt step's `with`: { passphrase } or { recipients }." },
    flush: { ...duration, description: 'How often the open (partial) log file is stored (default 5s): the recovery point objective.' },
  },
} as const;

// `marks:`: recovery marks (one point recorded in every participant's log at once), taken by `dbflow mark` and the daemon.
const marksEntry = {
  type: 'object',
  additionalProperties: false,
  required: ['databases', 'to'],
  properties: {
    databases: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', pattern: STEP_ID_PATTERN },
      description: 'The databases marked together, each with its log archived (`archive:`).',
    },
    to: {
      type: 'string',
      format: 'url',
      description: 'The repository the marks are recorded in (under dbflow-marks/), e.g. "{{ vars.repo }}".',
    },
    every: { ...duration, description: 'How often `dbflow daemon` takes a mark, e.g. 1m.' },
    barrier_timeout: { ...duration, description: 'How long a mark tries to hold every barrier at once before it fails (default 5s).' },
  },
} as const;

/** The pipeline schema without plugin `with` schemas (what validation runs first). */
export const pipelineSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://dbflow.dev/schemas/pipeline.schema.json',
  title: 'dbflow pipeline',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'name', 'steps'],
  properties: {
    version: { const: 1, description: 'Pipeline format version.' },
    name: { type: 'string', pattern: NAME_PATTERN },
    description: { type: 'string' },
    schedule: {
      type: 'string',
      minLength: 1,
      description: 'When `dbflow daemon` runs the pipeline: a cron expression, 5 fields ("0 2 * * *") or 6 with seconds first.',
    },
    timezone: { type: 'string', minLength: 1, description: "The schedule's IANA time zone, e.g. Europe/Berlin (default: the machine's)." },
    overlap: {
      enum: ['skip', 'queue'],
      description: 'When a scheduled run comes due while the previous one still runs: skip it (default), or queue it to run next.',
    },
    catch_up: {
      type: ['boolean', 'string'],
      pattern: DURATION_PATTERN,
      description:
        'When `dbflow daemon` starts and finds the last due time missed while no daemon ran (no run of the pipeline since, or only a killed or cancelled one): run it once now (true, the default), not at all (false), or only while it is at most this late (e.g. 6h). A pipeline that never ran is not caught up.',
    },
    runs_on: {
      type: 'object',
      additionalProperties: false,
      required: ['labels'],
      description: 'Where `dbflow worker` may run it: only on a worker started with every one of these labels (`--labels k=v,…`).',
      properties: {
        labels: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          patternProperties: { [LABEL_PATTERN]: { type: 'string', pattern: LABEL_PATTERN } },
          description: 'Labels a worker must have, e.g. { region: eu-west, network: billing }: letters, digits, ".", "_", "-".',
        },
      },
    },
    lock_wait: {
      ...duration,
      description:
        'How long a run waits for another run of this pipeline and repository to finish (default 0s: it exits at once, code 75).',
    },
    rpo: { ...duration, description: 'Recovery point objective: `dbflow status` fails when the last verified backup is older.' },
    rto: {
      ...duration,
      description: "Recovery time objective: `dbflow status` fails when the last verified backup's restore-test of a database took longer.",
    },
    timeout: duration,
    concurrency: { type: 'integer', minimum: 1, maximum: 256 },
    plugins: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'Plugin modules: ./relative/path.ts|js or an npm package name.',
    },
    secrets: { type: 'object', propertyNames: { pattern: STEP_ID_PATTERN }, additionalProperties: secretSource },
    vars: { type: 'object', propertyNames: { pattern: STEP_ID_PATTERN } },
    databases: {
      type: 'object',
      propertyNames: { pattern: STEP_ID_PATTERN },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['driver', 'url'],
        properties: {
          driver: { type: 'string', description: 'Database driver, e.g. sqlite, postgres, mysql.' },
          url: { type: 'string', minLength: 1 },
          password: {
            type: 'string',
            description: 'Password for the connection, e.g. "{{ secrets.db_password }}"; never logged, never passed in argv.',
          },
          options: { type: 'object' },
          assert: {
            type: 'array',
            minItems: 1,
            description:
              'Data assertions: read-only queries run inside the snapshot and again on the restored copy (restore-test); rowcount-check fails when the results differ or the restored one misses `expect`.',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['query'],
              properties: {
                name: { type: 'string', minLength: 1, description: 'How a failure names it (default: the query).' },
                query: {
                  type: 'string',
                  minLength: 1,
                  description: 'One read-only statement (SELECT, WITH …), e.g. SELECT sum(amount) FROM payments.',
                },
                expect: {
                  type: 'string',
                  pattern: EXPECT_PATTERN,
                  description:
                    '`equal` (default: the restored result equals the snapshot\'s), or a condition on the restored single value: "= 0", ">= 1", "!= 0".',
                },
                timeout: { ...duration, description: 'How long the query may run, each time (default 30s).' },
              },
            },
          },
        },
      },
    },
    storage: {
      type: 'object',
      propertyNames: { pattern: '^[a-z][a-z0-9+.-]*$' },
      additionalProperties: { type: 'object' },
      description: "Each storage's settings, by URL scheme (e.g. s3: { endpoint, region }); checked against the storage's schema.",
    },
    archive: {
      type: 'object',
      propertyNames: { pattern: STEP_ID_PATTERN },
      additionalProperties: archiveEntry,
      description: 'Continuous log archiving (`dbflow archive`), by database name: PostgreSQL WAL for point-in-time recovery.',
    },
    marks: {
      ...marksEntry,
      description:
        "Recovery marks: the same point recorded in every listed database's log at once, for a consistent restore of all of them (`dbflow mark`, `marks.every` in the daemon).",
    },
    steps: { type: 'array', minItems: 1, items: { $ref: '#/$defs/step' } },
    finally: {
      type: 'array',
      items: { $ref: '#/$defs/step' },
      description: 'Steps that run last, whatever happened (default if: always()).',
    },
    on_failure: {
      type: 'array',
      items: { $ref: '#/$defs/step' },
      description: 'Steps that run last when the run failed, e.g. notifications (default if: failure()).',
    },
  },
  $defs: { step },
} as const;

// One of T's properties, required: { env?, file? } → { env } | { file }.
type OneKeyOf<T> = { [K in keyof T]-?: Required<Pick<T, K>> }[keyof T];

// The secret source's type: PipelineDocument gives it to that schema through FromSchema's `deserialize` option.
type SecretSource = OneKeyOf<FromSchema<typeof secretSource>>;

/** A schema-valid pipeline document as written: snake_case keys, durations as text, no defaults filled in. */
export type PipelineDocument = FromSchema<typeof pipelineSchema, { deserialize: [{ pattern: typeof secretSource; output: SecretSource }] }>;

/** One step of a pipeline document. */
export type StepDocument = FromSchema<typeof step>;

/** The published schema: the pipeline schema plus each step type's `with` schema, for editors. */
export function publishedPipelineSchema(steps: readonly StepDefinition[]): JsonSchema {
  const byUses = [...steps].sort((a, b) => a.uses.localeCompare(b.uses));
  const withStep: JsonSchema = {
    ...step,
    properties: { ...step.properties, uses: { type: 'string', examples: byUses.map((s) => s.uses) } },
    allOf: byUses.map((s) => ({
      if: { properties: { uses: { const: s.uses } }, required: ['uses'] },
      then: { properties: { with: s.with } },
    })),
  };
  return { ...pipelineSchema, $defs: { step: withStep } };
}

// The pipeline schema, version 1: the one source of schemas/pipeline.schema.json and of the document's type.
import { Type, type Static } from '@sinclair/typebox';
import type { JsonSchema, StepDefinition } from '../plugins/types.js';
import { DURATION_PATTERN } from '../spec/duration.js';
import { constant, enumOf, mapOf, mapping } from './builders.js';

export const STEP_ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';

const duration = (description = 'A duration: 500ms, 30s, 5m, 2h, 1d.') => Type.String({ pattern: DURATION_PATTERN, description });

const step = Type.Object(
  {
    id: Type.String({ pattern: STEP_ID_PATTERN, description: 'Unique step id (letters, digits, _).' }),
    uses: Type.String({ minLength: 1, description: 'The step type, e.g. dump, compress, upload.' }),
    with: Type.Optional(mapping({ description: "The step type's options; checked against its plugin's schema." })),
    needs: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String(), { uniqueItems: true })], { description: 'Steps that must finish first.' }),
    ),
    input: Type.Optional(Type.String({ description: 'The step whose byte stream this step reads (a streaming edge).' })),
    matrix: Type.Optional(
      mapOf(Type.Union([Type.Array(Type.Unknown(), { minItems: 1 }), Type.String({ pattern: '^\\s*\\{\\{.*\\}\\}\\s*$' })]), {
        description: 'Runs the step once per combination of values.',
        minProperties: 1,
      }),
    ),
    if: Type.Optional(
      enumOf(['success()', 'failure()', 'always()', 'cancelled()'], {
        description: 'When the step runs: success() (default), failure(), always(), cancelled().',
      }),
    ),
    continue_on_error: Type.Optional(Type.Boolean({ description: 'A failure of this step does not fail the run.' })),
    retry: Type.Optional(
      Type.Object(
        {
          max_attempts: Type.Integer({ minimum: 1, maximum: 100 }),
          backoff: Type.Optional(enumOf(['constant', 'linear', 'exponential'])),
          delay: Type.Optional(duration()),
        },
        { additionalProperties: false },
      ),
    ),
    timeout: Type.Optional(duration()),
  },
  { additionalProperties: false },
);

// A step list's items refer to the one step definition.
const stepRef = Type.Unsafe<Static<typeof step>>(Type.Ref('#/$defs/step'));

// Exactly one of env and file: what min/maxProperties 1 say, and Static cannot infer from them.
const secretSource = Type.Unsafe<{ env: string } | { file: string }>(
  Type.Object(
    {
      env: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the secret.' })),
      file: Type.Optional(Type.String({ minLength: 1, description: 'File holding the secret.' })),
    },
    { additionalProperties: false, minProperties: 1, maxProperties: 1 },
  ),
);

const database = Type.Object(
  {
    driver: Type.String({ description: 'Database driver, e.g. sqlite, postgres, mysql.' }),
    url: Type.String({ minLength: 1 }),
    password: Type.Optional(
      Type.String({ description: 'Password for the connection, e.g. "{{ secrets.db_password }}"; never logged, never passed in argv.' }),
    ),
    options: Type.Optional(mapping()),
  },
  { additionalProperties: false },
);

/** The pipeline schema without plugin `with` schemas (what validation runs first). */
export const pipelineSchema = Type.Object(
  {
    version: constant(1, { description: 'Pipeline format version.' }),
    name: Type.String({ pattern: NAME_PATTERN }),
    description: Type.Optional(Type.String()),
    schedule: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'When `dbflow daemon` runs the pipeline: a cron expression, 5 fields ("0 2 * * *") or 6 with seconds first.',
      }),
    ),
    timezone: Type.Optional(
      Type.String({ minLength: 1, description: "The schedule's IANA time zone, e.g. Europe/Berlin (default: the machine's)." }),
    ),
    overlap: Type.Optional(
      enumOf(['skip', 'queue'], {
        description: 'When a scheduled run comes due while the previous one still runs: skip it (default), or queue it to run next.',
      }),
    ),
    lock_wait: Type.Optional(
      duration('How long a run waits for another run of this pipeline and repository to finish (default 0s: it exits at once, code 75).'),
    ),
    rpo: Type.Optional(duration('Recovery point objective: `dbflow status` fails when the last verified backup is older.')),
    timeout: Type.Optional(duration()),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    plugins: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Plugin modules: ./relative/path.ts|js or an npm package name.' }),
    ),
    secrets: Type.Optional(mapOf(secretSource, { propertyNames: { pattern: STEP_ID_PATTERN } })),
    vars: Type.Optional(mapping({ propertyNames: { pattern: STEP_ID_PATTERN } })),
    databases: Type.Optional(mapOf(database, { propertyNames: { pattern: STEP_ID_PATTERN } })),
    storage: Type.Optional(
      mapOf(mapping(), {
        propertyNames: { pattern: '^[a-z][a-z0-9+.-]*$' },
        description: "Each storage's settings, by URL scheme (e.g. s3: { endpoint, region }); checked against the storage's schema.",
      }),
    ),
    steps: Type.Array(stepRef, { minItems: 1 }),
    finally: Type.Optional(Type.Array(stepRef, { description: 'Steps that run last, whatever happened (default if: always()).' })),
    on_failure: Type.Optional(
      Type.Array(stepRef, { description: 'Steps that run last when the run failed, e.g. notifications (default if: failure()).' }),
    ),
  },
  {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://dbflow.dev/schemas/pipeline.schema.json',
    title: 'dbflow pipeline',
    additionalProperties: false,
    $defs: { step },
  },
);

/** A schema-valid pipeline document as written: snake_case keys, durations as text, no defaults filled in. */
export type PipelineDocument = Static<typeof pipelineSchema>;

/** One step of a pipeline document. */
export type StepDocument = Static<typeof step>;

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

// The manifest schema: the one source of schemas/manifest.schema.json and of the Manifest type.
import { Type } from '@sinclair/typebox';
import { constant, enumOf, mapOf, mapping } from '../schema/builders.js';

const SHA256_PATTERN = '^[0-9a-f]{64}$';

const tableCounts = mapOf(
  Type.Object({ rows: Type.Integer({ minimum: 0 }), checksum: Type.Optional(Type.String()) }, { additionalProperties: false }),
);

const names = Type.Array(Type.String());

export const manifestSchema = Type.Object(
  {
    format: constant('dbflow-manifest'),
    version: constant(1),
    pipeline: Type.Object(
      { name: Type.String(), sha256: Type.String({ pattern: SHA256_PATTERN }), file: Type.Optional(Type.String()) },
      { additionalProperties: false },
    ),
    run: Type.Object({ id: Type.String(), started_at: Type.String(), finished_at: Type.String() }, { additionalProperties: false }),
    status: enumOf(['verified', 'unverified'], { description: 'verified: every artifact passed its restore-test and checks.' }),
    databases: mapOf(
      Type.Object(
        {
          driver: Type.String(),
          server_version: Type.String(),
          position: mapping(),
          taken_at: Type.String(),
          tables: tableCounts,
        },
        { additionalProperties: false },
      ),
    ),
    artifacts: Type.Array(
      Type.Object(
        {
          database: Type.String(),
          url: Type.String(),
          path: Type.String({ description: 'Relative to the manifest.' }),
          bytes: Type.Integer({ minimum: 0 }),
          sha256: Type.String({ pattern: SHA256_PATTERN }),
          format: Type.String(),
          raw: Type.Optional(
            Type.Object(
              { bytes: Type.Integer({ minimum: 0 }), sha256: Type.Optional(Type.String({ pattern: SHA256_PATTERN })) },
              {
                description:
                  'The dump before any layer (compression, encryption). Its sha256 is absent when the dump went straight from the dump program into the compressor, whose own content checksum (the zstd frame checksum) covers it.',
                additionalProperties: false,
              },
            ),
          ),
          layers: Type.Array(Type.Object({ codec: Type.String() })),
        },
        { additionalProperties: false },
      ),
    ),
    verification: Type.Array(
      Type.Object(
        {
          database: Type.String(),
          step: Type.String(),
          check: Type.String(),
          ok: Type.Boolean(),
          detail: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    tools: mapOf(Type.String()),
    coordination: Type.Optional(
      Type.Array(
        Type.Object(
          {
            step: Type.String(),
            coordinated: Type.Boolean(),
            participants: Type.Array(Type.String()),
            guarantee: Type.Optional(Type.String()),
            blocked_ms: Type.Optional(
              Type.Number({ minimum: 0, description: 'The longest time commits were blocked on any participant.' }),
            ),
            attempts: Type.Optional(Type.Integer({ minimum: 1 })),
            barriers: Type.Optional(
              mapOf(
                Type.Object(
                  {
                    method: Type.String(),
                    acquired_at: Type.String(),
                    released_at: Type.String(),
                    held_ms: Type.Number({ minimum: 0 }),
                  },
                  { additionalProperties: false },
                ),
              ),
            ),
            not_covered: Type.Optional(Type.Array(Type.String())),
          },
          { additionalProperties: false },
        ),
        {
          description:
            'Per snapshot step over several databases: whether their snapshots are one consistent cut, and the barriers that made it.',
        },
      ),
    ),
    plugins: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String(),
            version: Type.Optional(Type.String()),
            contract: Type.String({ description: 'The plugin contract version it was written for, "MAJOR.MINOR".' }),
            specifier: Type.String({ description: 'As the pipeline wrote it under `plugins:`: a path or a package name.' }),
            resolved: Type.String({ description: 'The absolute file (or URL) it was imported from.' }),
            steps: Type.Optional(names),
            drivers: Type.Optional(names),
            storages: Type.Optional(names),
            codecs: Type.Optional(names),
          },
          { additionalProperties: false },
        ),
        {
          description:
            'The plugins the run imported (first-party ones are not listed): verify and restore load them again from `resolved` when the backup needs one of their codecs, drivers or storages.',
        },
      ),
    ),
  },
  {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://dbflow.dev/schemas/manifest.schema.json',
    title: 'dbflow backup manifest',
    additionalProperties: false,
  },
);

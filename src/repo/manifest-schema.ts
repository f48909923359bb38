// The manifest schema: the one source of schemas/manifest.schema.json and, at compile time, of the Manifest type.

const SHA256_PATTERN = '^[0-9a-f]{64}$';

const tableCounts = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    additionalProperties: false,
    required: ['rows'],
    properties: { rows: { type: 'integer', minimum: 0 }, checksum: { type: 'string' } },
  },
} as const;

const names = { type: 'array', items: { type: 'string' } } as const;

export const manifestSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://dbflow.dev/schemas/manifest.schema.json',
  title: 'dbflow backup manifest',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'version', 'pipeline', 'run', 'status', 'databases', 'artifacts', 'verification', 'tools'],
  properties: {
    format: { const: 'dbflow-manifest' },
    version: { const: 1 },
    pipeline: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'sha256'],
      properties: { name: { type: 'string' }, sha256: { type: 'string', pattern: SHA256_PATTERN }, file: { type: 'string' } },
    },
    run: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'started_at', 'finished_at'],
      properties: {
        id: { type: 'string' },
        started_at: { type: 'string' },
        finished_at: { type: 'string' },
        fencing_token: {
          type: 'integer',
          minimum: 1,
          description:
            "The fleet lease's fencing token the run held when it published (runs with --queue): greater for every later holder.",
        },
        worker: { type: 'string', description: 'The `dbflow worker` that ran it (runs from a queue).' },
        due_at: { type: 'string', description: 'The scheduled time the run was for (runs from a queue).' },
      },
    },
    status: { enum: ['verified', 'unverified'], description: 'verified: every artifact passed its restore-test and checks.' },
    databases: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['driver', 'server_version', 'position', 'taken_at', 'tables'],
        properties: {
          driver: { type: 'string' },
          server_version: { type: 'string' },
          position: { type: 'object' },
          taken_at: { type: 'string' },
          tables: tableCounts,
        },
      },
    },
    artifacts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['database', 'url', 'path', 'bytes', 'sha256', 'format', 'layers'],
        properties: {
          database: { type: 'string' },
          url: { type: 'string' },
          path: { type: 'string', description: 'Relative to the manifest.' },
          bytes: { type: 'integer', minimum: 0 },
          sha256: { type: 'string', pattern: SHA256_PATTERN },
          format: { type: 'string' },
          globals: {
            type: 'boolean',
            description:
              "The server's roles or users and their grants (pg_dumpall --globals-only, mariadb-dump --system=users), not a database's data: replayed before (PostgreSQL) or after (MariaDB) the database's dump on a new server.",
          },
          raw: {
            type: 'object',
            description:
              'The dump before any layer (compression, encryption). Its sha256 is absent when the dump went straight from the dump program into the compressor, whose own content checksum (the zstd frame checksum) covers it.',
            additionalProperties: false,
            required: ['bytes'],
            properties: { bytes: { type: 'integer', minimum: 0 }, sha256: { type: 'string', pattern: SHA256_PATTERN } },
          },
          layers: {
            type: 'array',
            items: { type: 'object', required: ['codec'], properties: { codec: { type: 'string' } } },
          },
          copies: {
            type: 'array',
            description:
              "Every stored copy of the artifact, this one included, when its upload wrote one stream to several places at once (same bytes and sha256). Each copy's repository holds a manifest of its own, whose `url` and `path` name the copy there.",
            items: { type: 'object', additionalProperties: false, required: ['url'], properties: { url: { type: 'string' } } },
          },
          failed_copies: {
            type: 'array',
            description:
              'Copies that could not be stored (their upload continued on error): never among `copies`, and their repository got no manifest.',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['url', 'error'],
              properties: { url: { type: 'string' }, error: { type: 'string', description: 'Why, with secrets masked.' } },
            },
          },
          position: {
            type: 'object',
            description:
              'Where a physical artifact stands (format pg-basebackup-tar: a PostgreSQL base backup with the WAL it needs; mariadb-backup-xbstream: the binlog position a MariaDB base backup ends at), and what a restore recovers to.',
            properties: {
              system_identifier: { type: 'string', description: "The cluster's database system identifier." },
              timeline: { type: 'integer', minimum: 1 },
              start_lsn: { type: 'string', description: 'The base backup starts here (its checkpoint redo point).' },
              stop_lsn: { type: 'string', description: 'The base backup is consistent from here.' },
              wal: {
                type: 'object',
                description: 'The WAL segments the artifact holds and a restore needs, first to last.',
                properties: { first: { type: 'string' }, last: { type: 'string' } },
              },
              restore_point: { type: 'string', description: 'The named restore point the counts were taken at: the recovery target.' },
              restore_point_lsn: { type: 'string' },
              server_version: { type: 'string' },
              database_name: { type: 'string', description: 'The database whose tables were counted.' },
              user: { type: 'string', description: 'The role the counts were taken as.' },
            },
          },
        },
      },
    },
    verification: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['database', 'step', 'check', 'ok'],
        properties: {
          database: { type: 'string' },
          step: { type: 'string' },
          check: { type: 'string' },
          ok: { type: 'boolean' },
          detail: { type: 'string' },
          duration_ms: { type: 'number', minimum: 0 },
        },
      },
    },
    tools: { type: 'object', additionalProperties: { type: 'string' } },
    coordination: {
      type: 'array',
      description:
        'Per snapshot step over several databases: whether their snapshots are one consistent cut, and the barriers that made it.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['step', 'coordinated', 'participants'],
        properties: {
          step: { type: 'string' },
          coordinated: { type: 'boolean' },
          participants: { type: 'array', items: { type: 'string' } },
          guarantee: { type: 'string' },
          blocked_ms: { type: 'number', minimum: 0, description: 'The longest time commits were blocked on any participant.' },
          attempts: { type: 'integer', minimum: 1 },
          barriers: {
            type: 'object',
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              required: ['method', 'acquired_at', 'released_at', 'held_ms'],
              properties: {
                method: { type: 'string' },
                acquired_at: { type: 'string' },
                released_at: { type: 'string' },
                held_ms: { type: 'number', minimum: 0 },
              },
            },
          },
          not_covered: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    plugins: {
      type: 'array',
      description:
        'The plugins the run imported (first-party ones are not listed): verify and restore load them again from `resolved` when the backup needs one of their codecs, drivers or storages.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'contract', 'specifier', 'resolved'],
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          contract: { type: 'string', description: 'The plugin contract version it was written for, "MAJOR.MINOR".' },
          specifier: { type: 'string', description: 'As the pipeline wrote it under `plugins:`: a path or a package name.' },
          resolved: { type: 'string', description: 'The absolute file (or URL) it was imported from.' },
          steps: names,
          drivers: names,
          storages: names,
          codecs: names,
        },
      },
    },
  },
} as const;

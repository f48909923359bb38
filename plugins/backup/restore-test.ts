// The `restore-test` step: restores what was stored into a scratch database (a physical backup: a throwaway instance) and counts its rows.
import {
  DbflowError,
  defineStep,
  readArtifact,
  scratchDatabaseName,
  type ArtifactRecord,
  type DatabaseConfig,
  type DatabaseDriver,
  type DecodeKeys,
  type ScratchDatabase,
  type StepContext,
  type StepResult,
  type TableCounts,
} from '../../src/plugin-api.js';

interface RestoreTestWith {
  from: string;
  target?: string;
  passphrase?: string;
  private_key?: string;
}

type RestoreTestOutputs = { database: string; tables: TableCounts; bytes: number; assertions?: { name: string; result: string }[] };

export const restoreTestStep = defineStep<RestoreTestWith, RestoreTestOutputs>({
  uses: 'restore-test',
  kind: 'task',
  description: 'Download, decrypt, decompress and restore a stored artifact into a scratch database, then count its rows.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', format: 'step-id', description: 'The upload step whose artifact to restore.' },
      target: {
        type: 'string',
        default: 'scratch',
        description:
          'Where a dump is restored: scratch (a scratch database on the source server), throwaway (an empty server started from the installed binaries, removed after: no load and no database on the source server), or a database URL of a dedicated restore server (a scratch database is made there). A base backup always restores into a throwaway instance.',
      },
      passphrase: { type: 'string', 'x-secret': true },
      private_key: { type: 'string', 'x-secret': true, description: 'Armored private key for public-key encryption.' },
    },
  },
  outputs: {
    type: 'object',
    properties: { database: { type: 'string' }, tables: { type: 'object' }, bytes: { type: 'integer' } },
  },
  async run(ctx) {
    const started = performance.now();
    const artifact = ctx.outputsOf(ctx.with.from) as unknown as ArtifactRecord;
    const { config, driver } = ctx.database(artifact.database);
    if (driver.restoreInstance && driver.physicalFormats?.includes(artifact.format))
      return restoreIntoInstance(ctx, artifact, config, driver, started);
    const { scratch, db } = await restoreTarget(ctx, driver, config, scratchDatabaseName(ctx.run.id, artifact.database));
    try {
      const keys = keysOf(ctx);
      // The restore reads untrusted bytes: a failed check errors its stream before the end.
      const { bytes } = await readArtifact(
        ctx,
        artifact,
        keys,
        (input) => driver.restore(ctx, { url: scratch.url, input, format: artifact.format, db }),
        {
          signal: ctx.signal,
          progress: (n) => ctx.progress(n),
          // The scratch database is dropped whatever happens: the restore program may read the decoder directly.
          direct: true,
          // A failure says whether the stored object is damaged, whichever stage noticed first.
          settleDigest: true,
        },
      );
      const tables = await driver.rowCounts(ctx, { url: scratch.url, db });
      const assertions = await assertOn(ctx, driver, scratch.url, db);
      ctx.report.verification({
        database: artifact.database,
        step: ctx.id,
        check: 'restore',
        ok: true,
        duration_ms: elapsed(started),
        detail: `${Object.keys(tables).length} tables restored from ${artifact.url} into ${ctx.with.target === 'throwaway' ? 'a throwaway server' : ctx.with.target && ctx.with.target !== 'scratch' ? 'a restore server' : 'a scratch database'}${artifact.raw?.sha256 ? '; the decoded dump is byte-identical to the one taken (sha256)' : ''}`,
      });
      ctx.log.info(`restored ${bytes} bytes of ${artifact.url} into a scratch database`);
      return { outputs: { database: artifact.database, tables, bytes, ...(assertions && { assertions }) } };
    } finally {
      await scratch.drop();
    }
  },
});

// Where the dump is restored (with.target): a scratch database beside the source, on a throwaway server, or on a
// dedicated restore server (its URL); with the entry to reach it by (the source's password goes to the source only).
async function restoreTarget(
  ctx: StepContext<RestoreTestWith>,
  driver: DatabaseDriver,
  config: DatabaseConfig,
  name: string,
): Promise<{ scratch: ScratchDatabase; db: DatabaseConfig }> {
  const target = ctx.with.target ?? 'scratch';
  if (target === 'scratch') return { scratch: await driver.scratch(ctx, { db: config, name }), db: config };
  const { password: _, ...elsewhere } = config;
  if (target === 'throwaway') {
    if (!driver.throwaway)
      throw new DbflowError(`database "${config.name}": driver "${driver.name}" cannot restore into a throwaway server.`);
    return { scratch: await driver.throwaway(ctx, { db: elsewhere, name }), db: elsewhere };
  }
  const db = { ...elsewhere, url: target };
  return { scratch: await driver.scratch(ctx, { db, name }), db };
}

// The database's data assertions run on the restored copy (read-only), for rowcount-check to compare.
async function assertOn(
  ctx: StepContext<RestoreTestWith>,
  driver: DatabaseDriver,
  url: string,
  db: DatabaseConfig,
): Promise<{ name: string; result: string }[] | undefined> {
  if (!db.assertions?.length) return undefined;
  if (!driver.query) throw new DbflowError(`database "${db.name}": driver "${driver.name}" cannot run data assertions.`);
  const out: { name: string; result: string }[] = [];
  for (const a of db.assertions)
    out.push({ name: a.name, result: await driver.query(ctx, { url, db, sql: a.query, timeoutMs: a.timeoutMs }) });
  return out;
}

// Milliseconds since `started`, to the hundredth.
const elapsed = (started: number): number => Math.round((performance.now() - started) * 100) / 100;

function keysOf(ctx: StepContext<RestoreTestWith>): DecodeKeys {
  return {
    ...(ctx.with.passphrase !== undefined && { passphrase: ctx.with.passphrase }),
    ...(ctx.with.private_key !== undefined && { privateKey: ctx.with.private_key }),
  };
}

// A physical artifact (a base backup) is restored into a throwaway server instance, never the production server.
async function restoreIntoInstance(
  ctx: StepContext<RestoreTestWith>,
  artifact: ArtifactRecord,
  config: DatabaseConfig,
  driver: DatabaseDriver,
  started: number,
): Promise<StepResult<RestoreTestOutputs>> {
  let instance: ScratchDatabase | undefined;
  try {
    const { bytes } = await readArtifact(
      ctx,
      artifact,
      keysOf(ctx),
      async (input) => {
        instance = await driver.restoreInstance!(ctx, { input, format: artifact.format, position: artifact.position ?? {}, db: config });
      },
      { signal: ctx.signal, progress: (n) => ctx.progress(n), direct: true, settleDigest: true },
    );
    const checksum = artifact.position?.checksum;
    const tables = await driver.rowCounts(ctx, { url: instance!.url, db: config, ...(typeof checksum === 'string' && { checksum }) });
    const assertions = await assertOn(ctx, driver, instance!.url, config);
    const point = artifact.position?.restore_point;
    ctx.report.verification({
      database: artifact.database,
      step: ctx.id,
      check: 'restore',
      ok: true,
      duration_ms: elapsed(started),
      detail: `base backup ${artifact.url} recovered in a throwaway instance${typeof point === 'string' ? ` to restore point ${point}` : ''}; ${Object.keys(tables).length} tables counted${artifact.raw?.sha256 ? '; the decoded tar is byte-identical to the one taken (sha256)' : ''}`,
    });
    ctx.log.info(`restored ${bytes} bytes of ${artifact.url} into a throwaway instance`);
    return { outputs: { database: artifact.database, tables, bytes, ...(assertions && { assertions }) } };
  } finally {
    await instance?.drop();
  }
}

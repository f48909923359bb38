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
  globals?: string;
  target?: string;
  passphrase?: string;
  private_key?: string;
}

type RestoreTestOutputs = {
  database: string;
  tables: TableCounts;
  bytes: number;
  assertions?: { name: string; result: string }[];
  /** With `globals`: the restored copy's owners and privileges (the driver's privileges query), for rowcount-check. */
  privileges?: string;
};

// The globals artifact (a server's roles and grants) is read whole: it is a few kilobytes to a few megabytes.
const MAX_GLOBALS_BYTES = 256 * 1024 * 1024;

export const restoreTestStep = defineStep<RestoreTestWith, RestoreTestOutputs>({
  uses: 'restore-test',
  kind: 'task',
  description: 'Download, decrypt, decompress and restore a stored artifact into a scratch database, then count its rows.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    // The server's roles go into a throwaway server only: replayed elsewhere they would change a server's roles.
    if: { properties: { globals: { type: 'string' } }, required: ['globals'] },
    then: { properties: { target: { type: 'string', const: 'throwaway' } }, required: ['target'] },
    properties: {
      from: { type: 'string', format: 'step-id', description: 'The upload step whose artifact to restore.' },
      globals: {
        type: 'string',
        format: 'step-id',
        description:
          "The upload step of the server's roles (a dump step with globals: true): restored first into the throwaway target, then the dump with its owners and privileges, which rowcount-check compares with the source's inside the snapshot. Needs target: throwaway.",
      },
      target: {
        type: 'string',
        description:
          'Where a dump is restored: throwaway (an empty server started from the installed binaries, removed after: no load and no database on the source server; the default where the server binaries are installed), scratch (a scratch database on the source server; the default otherwise), or a database URL of a dedicated restore server (a scratch database is made there). A base backup always restores into a throwaway instance.',
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
    const keys = keysOf(ctx);
    const globals = ctx.with.globals === undefined ? undefined : await globalsOf(ctx, ctx.with.globals, artifact, driver, keys);
    const target = ctx.with.target ?? (await defaultTarget(ctx, driver, artifact.database));
    const { scratch, db } = await restoreTarget(ctx, driver, config, scratchDatabaseName(ctx.run.id, artifact.database), target);
    try {
      // The restore reads untrusted bytes: a failed check errors its stream before the end.
      const { bytes } = await readArtifact(
        ctx,
        artifact,
        keys,
        (input) => driver.restore(ctx, { url: scratch.url, input, format: artifact.format, db, ...(globals !== undefined && { globals }) }),
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
      const privileges =
        globals === undefined
          ? undefined
          : await driver.query!(ctx, { url: scratch.url, db, sql: driver.privilegesQuery!(db), timeoutMs: 60_000 });
      ctx.report.verification({
        database: artifact.database,
        step: ctx.id,
        check: 'restore',
        ok: true,
        duration_ms: elapsed(started),
        detail: `${Object.keys(tables).length} tables restored from ${artifact.url} into ${into(target)}${artifact.raw?.sha256 ? '; the decoded dump is byte-identical to the one taken (sha256)' : ''}`,
      });
      ctx.log.info(`restored ${bytes} bytes of ${artifact.url} into ${into(target)}`);
      return {
        outputs: {
          database: artifact.database,
          tables,
          bytes,
          ...(assertions && { assertions }),
          ...(privileges !== undefined && { privileges }),
        },
      };
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
  target: string,
): Promise<{ scratch: ScratchDatabase; db: DatabaseConfig }> {
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

const into = (target: string): string =>
  target === 'throwaway' ? 'a throwaway server' : target === 'scratch' ? 'a scratch database' : 'a restore server';

// Without with.target: a throwaway server where the driver can start one here (the production server then carries
// neither the restore's load nor a database), else a scratch database beside the source, saying why.
async function defaultTarget(ctx: StepContext<RestoreTestWith>, driver: DatabaseDriver, database: string): Promise<string> {
  if (!driver.throwaway) return 'scratch';
  const missing = driver.throwawayMissing ? await driver.throwawayMissing() : undefined;
  if (missing === undefined) return 'throwaway';
  ctx.log.info(
    `restoring "${database}" into a scratch database on the source server: ${missing}; set target: scratch to say so, or install them for a throwaway server`,
  );
  return 'scratch';
}

// The server's roles of the dump's database, decoded from the globals artifact of upload step `from`; only into a
// throwaway server: replayed on a production or shared server, they would change its roles.
async function globalsOf(
  ctx: StepContext<RestoreTestWith>,
  from: string,
  artifact: ArtifactRecord,
  driver: DatabaseDriver,
  keys: DecodeKeys,
): Promise<string> {
  if ((ctx.with.target ?? 'scratch') !== 'throwaway')
    throw new DbflowError(
      `step "${ctx.id}": globals restores the server's roles, which only a throwaway server may take; set target: throwaway.`,
    );
  if (!driver.privilegesQuery || !driver.query)
    throw new DbflowError(`database "${artifact.database}": driver "${driver.name}" cannot compare restored owners and privileges.`);
  const roles = ctx.outputsOf(from) as unknown as ArtifactRecord;
  if (!roles.globals || roles.database !== artifact.database)
    throw new DbflowError(
      `step "${ctx.id}": globals must name the upload of a dump step with globals: true for database "${artifact.database}"; "${from}" stored ${roles.globals ? `the roles of "${roles.database}"` : 'a database dump'}.`,
    );
  const chunks: Buffer[] = [];
  let size = 0;
  await readArtifact(
    ctx,
    roles,
    keys,
    async (input) => {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_GLOBALS_BYTES)
          throw new DbflowError(`the globals artifact ${roles.url} decodes to more than 256 MiB; it is not a roles dump.`);
        chunks.push(chunk);
      }
    },
    { signal: ctx.signal, settleDigest: true },
  );
  return Buffer.concat(chunks).toString('utf8');
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

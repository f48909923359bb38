// The `restore-test` step: restores what was stored into a scratch database and counts its rows.
import { defineStep, readArtifact, scratchDatabaseName, type ArtifactRecord, type TableCounts } from '../../src/plugin-api.js';

interface RestoreTestWith {
  from: string;
  passphrase?: string;
  private_key?: string;
}

export const restoreTestStep = defineStep<RestoreTestWith, { database: string; tables: TableCounts; bytes: number }>({
  uses: 'restore-test',
  kind: 'task',
  description: 'Download, decrypt, decompress and restore a stored artifact into a scratch database, then count its rows.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', format: 'step-id', description: 'The upload step whose artifact to restore.' },
      passphrase: { type: 'string', 'x-secret': true },
      private_key: { type: 'string', 'x-secret': true, description: 'Armored private key for public-key encryption.' },
    },
  },
  outputs: {
    type: 'object',
    properties: { database: { type: 'string' }, tables: { type: 'object' }, bytes: { type: 'integer' } },
  },
  async run(ctx) {
    const artifact = ctx.outputsOf(ctx.with.from) as unknown as ArtifactRecord;
    const { config, driver } = ctx.database(artifact.database);
    const scratch = await driver.scratch(ctx, { db: config, name: scratchDatabaseName(ctx.run.id, artifact.database) });
    try {
      const keys = {
        ...(ctx.with.passphrase !== undefined && { passphrase: ctx.with.passphrase }),
        ...(ctx.with.private_key !== undefined && { privateKey: ctx.with.private_key }),
      };
      // The restore reads untrusted bytes: a failed check errors its stream before the end.
      const { bytes } = await readArtifact(
        ctx,
        artifact,
        keys,
        (input) => driver.restore(ctx, { url: scratch.url, input, format: artifact.format, db: config }),
        {
          signal: ctx.signal,
          progress: (n) => ctx.progress(n),
          // The scratch database is dropped whatever happens: the restore program may read the decoder directly.
          direct: true,
        },
      );
      const tables = await driver.rowCounts(ctx, { url: scratch.url, db: config });
      ctx.report.verification({
        database: artifact.database,
        step: ctx.id,
        check: 'restore',
        ok: true,
        detail: `${Object.keys(tables).length} tables restored from ${artifact.url}${artifact.raw?.sha256 ? '; the decoded dump is byte-identical to the one taken (sha256)' : ''}`,
      });
      ctx.log.info(`restored ${bytes} bytes of ${artifact.url} into a scratch database`);
      return { outputs: { database: artifact.database, tables, bytes } };
    } finally {
      await scratch.drop();
    }
  },
});

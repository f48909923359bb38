// The `dump` step: a stream of one database's dump, read from the snapshot step's lease.
import { DbflowError, defineStep } from '../../src/plugin-api.js';
import type { SnapshotLease } from './snapshot.js';

interface DumpWith {
  database: string;
  snapshot: string;
  globals?: boolean;
  role_passwords?: boolean;
}

export const dumpStep = defineStep<DumpWith>({
  uses: 'dump',
  kind: 'source',
  description: "Stream a database's dump, reading exactly the snapshot taken by a snapshot step.",
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['database', 'snapshot'],
    properties: {
      database: { type: 'string', description: 'A name from databases:.' },
      snapshot: { type: 'string', format: 'step-id', description: 'The snapshot step to read from.' },
      globals: {
        type: 'boolean',
        default: false,
        description:
          "Dump the server's roles or users, memberships and grants instead of the data (pg_dumpall --globals-only, mariadb-dump --system=users), while the snapshot is open: a restore-test with `globals:` restores them into a throwaway server and compares owners and privileges.",
      },
      role_passwords: {
        type: 'boolean',
        default: false,
        description:
          "With globals: keep the roles' password hashes (PostgreSQL leaves them out otherwise; MariaDB's dump always has them).",
      },
    },
  },
  outputs: {
    type: 'object',
    properties: { database: { type: 'string' }, format: { type: 'string' }, extension: { type: 'string' }, globals: { type: 'boolean' } },
  },
  async run(ctx) {
    const { database, snapshot } = ctx.with;
    const snap = ctx.resource<SnapshotLease>(snapshot).get(database);
    if (!snap) throw new DbflowError(`snapshot step "${snapshot}" did not snapshot database "${database}"; add it to its "databases".`);
    const { config, driver } = ctx.database(database);
    if (ctx.with.globals) {
      if (!driver.dumpGlobals)
        throw new DbflowError(`database "${database}": driver "${driver.name}" cannot dump its server's roles (globals).`);
      const roles = await driver.dumpGlobals(ctx, { db: config, passwords: ctx.with.role_passwords === true });
      return {
        output: roles.stream,
        outputs: { database, format: roles.format, extension: roles.extension, globals: true },
        ...(roles.final && { final: roles.final.then(() => ({})) }),
      };
    }
    const dump = await driver.dump(ctx, { db: config, snapshot: snap });
    // Counts taken alongside the dump must be complete (and correct) for the dump to count.
    const checks = [snap.counted, dump.final].filter((p) => p !== undefined);
    const final = checks.length ? Promise.all(checks).then(() => ({})) : undefined;
    return { output: dump.stream, outputs: { database, format: dump.format, extension: dump.extension }, ...(final && { final }) };
  },
});

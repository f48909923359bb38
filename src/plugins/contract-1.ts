// Plugins written for contract 1.x: their drivers and codecs take positional parameters, so dbflow calls them through
// an adapter that hands each 2.0 options object on as the parameters 1.x declared.
import type { Duplex, Readable } from 'node:stream';
import type {
  ArtifactLayer,
  Codec,
  DatabaseConfig,
  DatabaseDriver,
  DecodeKeys,
  DecodeOptions,
  DriverContext,
  DriverSnapshot,
  DumpStream,
  PreflightReport,
  PreflightUse,
  ReapOptions,
  ScratchDatabase,
  SnapshotParticipant,
  TableCounts,
} from './types.js';

// A driver as contract 1.x declared it.
interface Driver1 extends Pick<DatabaseDriver, 'name' | 'options' | 'checkUrl'> {
  stockRestore?(format: string, decoded: string, database: string): string | undefined;
  snapshot(ctx: DriverContext, db: DatabaseConfig): Promise<DriverSnapshot>;
  participate?(ctx: DriverContext, db: DatabaseConfig): Promise<SnapshotParticipant>;
  dump(ctx: DriverContext, db: DatabaseConfig, snapshot: DriverSnapshot): Promise<DumpStream>;
  scratch(ctx: DriverContext, db: DatabaseConfig, name: string): Promise<ScratchDatabase>;
  create?(ctx: DriverContext, db: DatabaseConfig): Promise<boolean>;
  exists?(ctx: DriverContext, db: DatabaseConfig): Promise<boolean>;
  restore(ctx: DriverContext, url: string, input: Readable, format: string, db: DatabaseConfig): Promise<void>;
  rowCounts(ctx: DriverContext, url: string, db: DatabaseConfig, o?: { checksum?: string }): Promise<TableCounts>;
  reap?(db: DatabaseConfig, o: Omit<ReapOptions, 'db'>): Promise<string[]>;
  preflight?(ctx: DriverContext, db: DatabaseConfig, use: PreflightUse): Promise<PreflightReport>;
}

// A codec as contract 1.x declared it.
interface Codec1 {
  name: string;
  decode(keys: DecodeKeys, layer: ArtifactLayer, exec?: DecodeOptions['exec']): Duplex | Promise<Duplex>;
}

/** The 2.0 driver that calls `driver`, a 1.x plugin's, with the 1.x parameters; it has the optional methods `driver` has. */
export function driverFrom1(driver: DatabaseDriver): DatabaseDriver {
  const d = driver as unknown as Driver1;
  // Bound: a 1.x method may use `this`.
  const stockRestore = d.stockRestore?.bind(d);
  const participate = d.participate?.bind(d);
  const create = d.create?.bind(d);
  const exists = d.exists?.bind(d);
  const reap = d.reap?.bind(d);
  const preflight = d.preflight?.bind(d);
  return {
    name: d.name,
    options: d.options,
    ...(d.checkUrl && { checkUrl: d.checkUrl.bind(d) }),
    ...(stockRestore && { stockRestore: ({ format, decoded, database }) => stockRestore(format, decoded, database) }),
    snapshot: (ctx, { db }) => d.snapshot(ctx, db),
    ...(participate && { participate: (ctx, { db }) => participate(ctx, db) }),
    dump: (ctx, { db, snapshot }) => d.dump(ctx, db, snapshot),
    scratch: (ctx, { db, name }) => d.scratch(ctx, db, name),
    ...(create && { create: (ctx, { db }) => create(ctx, db) }),
    ...(exists && { exists: (ctx, { db }) => exists(ctx, db) }),
    restore: (ctx, { url, input, format, db }) => d.restore(ctx, url, input, format, db),
    rowCounts: (ctx, { url, db, ...o }) => d.rowCounts(ctx, url, db, o),
    ...(reap && { reap: ({ db, ...o }) => reap(db, o) }),
    ...(preflight && { preflight: (ctx, { db, use }) => preflight(ctx, db, use) }),
  };
}

/** The 2.0 codec that calls `codec`, a 1.x plugin's, with the 1.x parameters. */
export function codecFrom1(codec: Codec): Codec {
  const c = codec as unknown as Codec1;
  return { name: c.name, decode: ({ keys, layer, exec }) => c.decode(keys, layer, exec) };
}

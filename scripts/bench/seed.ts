// The source database of the throughput benchmark: seeded once with the sqlite-seed step, cached by size.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BenchError, CLI, DATA, fileSize, MiB, runOk, scratchDir } from './util.js';

// The sqlite plugin documents ~450 bytes per order (with its ~3 items and 1/8 customer); measured
// values are cached in bench-data/seed-calibration.json and used for the next size.
const DEFAULT_BYTES_PER_ORDER = 450;
const CALIBRATION = path.join(DATA, 'seed-calibration.json');

function bytesPerOrder(): number {
  try {
    const v = (JSON.parse(readFileSync(CALIBRATION, 'utf8')) as { bytesPerOrder?: unknown }).bytesPerOrder;
    return typeof v === 'number' && v > 50 ? v : DEFAULT_BYTES_PER_ORDER;
  } catch {
    return DEFAULT_BYTES_PER_ORDER;
  }
}

function seedYaml(file: string, orders: number, ifMissing: boolean): string {
  return [
    'version: 1',
    'name: bench_seed',
    'databases:',
    `  src: { driver: sqlite, url: ${JSON.stringify(`sqlite:${file}`)} }`,
    'steps:',
    `  - { id: seed, uses: sqlite-seed, with: { database: src, rows: ${orders}, if_missing: ${ifMissing} } }`,
    '',
  ].join('\n');
}

async function seed(file: string, orders: number, ifMissing: boolean): Promise<void> {
  const dir = scratchDir('seed');
  try {
    const yaml = path.join(dir, 'seed.yaml');
    writeFileSync(yaml, seedYaml(file, orders, ifMissing));
    await runOk(process.execPath, [CLI, 'run', yaml, '--state-dir', path.join(dir, 'state')], { env: { ...process.env, CI: '1' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The path of a seeded SQLite database of at least `sizeMiB` MiB (bench-data/src-<size>mib.sqlite3). */
export async function sourceDatabase(
  sizeMiB: number,
  log: (s: string) => void,
): Promise<{ file: string; bytes: number; orders: number; seededMs?: number }> {
  mkdirSync(DATA, { recursive: true });
  const file = path.join(DATA, `src-${sizeMiB}mib.sqlite3`);
  const meta = `${file}.json`;
  const want = sizeMiB * MiB;
  if (fileSize(file) >= want) {
    const orders = (() => {
      try {
        return (JSON.parse(readFileSync(meta, 'utf8')) as { orders: number }).orders;
      } catch {
        return 0;
      }
    })();
    log(`  cached source database ${path.relative(process.cwd(), file)} (${(fileSize(file) / MiB).toFixed(0)} MiB)`);
    return { file, bytes: fileSize(file), orders };
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`, meta]) rmSync(f, { force: true });
  const t0 = performance.now();
  let orders = Math.ceil((want * 1.05) / bytesPerOrder());
  log(`  seeding ${path.relative(process.cwd(), file)}: sqlite-seed with ${orders} orders (≈${bytesPerOrder().toFixed(0)} bytes/order) …`);
  await seed(file, orders, true);
  // Top up when the estimate fell short (if_missing: false adds rows to the existing database).
  for (let attempt = 0; fileSize(file) < want; attempt++) {
    if (attempt === 3)
      throw new BenchError(`sqlite-seed did not reach ${sizeMiB} MiB after 3 top-ups (${(fileSize(file) / MiB).toFixed(0)} MiB)`);
    const per = fileSize(file) / orders;
    const more = Math.ceil(((want - fileSize(file)) * 1.05) / per) + 1000;
    log(`  ${(fileSize(file) / MiB).toFixed(0)} MiB is short of ${sizeMiB} MiB: adding ${more} orders …`);
    await seed(file, more, false);
    orders += more;
  }
  const bytes = fileSize(file);
  writeFileSync(CALIBRATION, `${JSON.stringify({ bytesPerOrder: bytes / orders }, null, 2)}\n`);
  writeFileSync(meta, `${JSON.stringify({ orders, bytes }, null, 2)}\n`);
  const seededMs = performance.now() - t0;
  log(`  seeded ${(bytes / MiB).toFixed(0)} MiB with ${orders} orders in ${(seededMs / 1000).toFixed(1)} s`);
  return { file, bytes, orders, seededMs };
}

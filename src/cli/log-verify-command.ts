// `dbflow verify <log archive>`: the WAL chain per timeline, and every stored object against its record.
import { ExitCode, UsageError } from '../errors.js';
import type { Registry } from '../plugins/registry.js';
import { readMarker } from '../repo/log-archive.js';
import { archiveSystems, verifySystem } from '../repo/log-verify.js';
import { formatBytes } from '../ui/format.js';
import { interruptible } from './command-support.js';
import type { Io } from './io.js';

/** Verifies the archive at `root` (its systems, or those named); exit 1 when a file is damaged or missing. */
export async function logVerifyCommand(registry: Registry, root: string, only: string[] | undefined, io: Io): Promise<number> {
  const storage = registry.storageFor(root);
  const marker = await readMarker(storage, root);
  const archive = registry.drivers.get(marker?.driver ?? '')?.logArchive;
  if (!marker || !archive)
    throw new UsageError(`"${root}" is not a log archive that a loaded driver can read (driver "${marker?.driver ?? '?'}").`);
  const systems = only ?? (await archiveSystems(storage, root));
  let bad = false;
  await interruptible(io, 'verify', async (signal) => {
    for (const system of systems) {
      const v = await verifySystem(storage, root, system, archive, signal, (record, problem) => {
        if (problem) io.out(`✗ ${record.file}: ${problem}`);
      });
      io.out(
        `log archive ${v.folder} (${marker.driver}, pipeline ${marker.pipeline}, database ${marker.database}): ${v.files} files, ${formatBytes(v.bytes)}, newest ${v.newest ?? 'none'}`,
      );
      for (const g of v.gaps) io.out(`✗ timeline ${g.timeline}: ${g.missing} is missing (after ${g.after})`);
      if (v.problems.length || v.gaps.length) {
        bad = true;
        const first = v.gaps[0]?.missing ?? v.problems[0]?.file;
        io.err(
          `dbflow: the log archive ${v.folder} is damaged: ${v.problems.length} damaged or unreadable, ${v.gaps.length} gaps; the first missing file is ${first}. Recovery cannot replay past it.`,
        );
      } else io.out(`✓ the chain is complete and every object matches its record`);
    }
  });
  return bad ? ExitCode.stepFailed : ExitCode.ok;
}

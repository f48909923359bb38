// Where a backup is published: the folder its artifacts share, and, for artifacts written to several places at once,
// the same folder in each other repository — each gets a manifest of its own that resolves the artifacts there.
import path from 'node:path';
import { DbflowError } from '../errors.js';
import type { ArtifactRecord } from '../plugins/types.js';

/** One repository's copy of a backup: its folder, and each artifact with `url` naming the copy there. */
export interface BackupSite {
  location: string;
  artifacts: ArtifactRecord[];
}

/** The repositories of a run's artifacts: those holding a copy of every artifact, and those left out, with why. */
export interface BackupSites {
  /** First the one of the artifacts' first destinations, then the others in the order of the upload's `to:`. */
  complete: BackupSite[];
  /** A repository where a copy of some artifact failed (its upload continued on error): it gets no manifest. */
  incomplete: { location: string; missing: string[] }[];
}

/** The folder URL that every URL is in (the deepest one), or an error naming them. */
export function commonFolder(urls: readonly string[]): string {
  const dirs = urls.map((u) => u.slice(0, u.lastIndexOf('/')));
  let common = dirs[0] ?? '';
  for (const d of dirs) while (!(d === common || d.startsWith(`${common}/`))) common = common.slice(0, common.lastIndexOf('/'));
  if (!/^[a-z][a-z0-9+.-]*:(?:\/\/\/?)?[^/]/.test(common)) {
    throw new DbflowError(`the artifacts of this run share no folder (${dirs.join(', ')}); upload them under one backup folder.`);
  }
  return common;
}

/**
 * Groups the copies of `artifacts` by repository. The first destination of every artifact makes the first site (the
 * folder they share); every other copy must sit at the same path below its own site's folder (`<repo>/<run>/<name>`
 * in each repository), so that each site's manifest finds every artifact beside it.
 */
export function backupSites(artifacts: readonly ArtifactRecord[]): BackupSites {
  const firsts = artifacts.map((a) => a.copies?.[0]?.url ?? a.url);
  const primary = commonFolder(firsts);
  const sites = new Map<string, Map<number, string>>([[primary, new Map()]]);
  const failed = new Map<string, Set<number>>();
  artifacts.forEach((a, i) => {
    const rel = path.posix.relative(primary, firsts[i]!);
    for (const copy of a.copies ?? [{ url: a.url }]) {
      let at: string;
      if (copy.url === firsts[i]) at = primary;
      else if (copy.url.endsWith(`/${rel}`)) at = copy.url.slice(0, -rel.length - 1);
      else
        throw new DbflowError(
          `the copy "${copy.url}" of the ${a.database} artifact is not at the path "${rel}" that its first copy "${firsts[i]}" has below the backup's folder "${primary}": write each copy at the same path below its repository (e.g. "<repository>/{{ run.id }}/<name>" in every URL of "to:"), so that each repository holds the whole backup.`,
        );
      if (!/^[a-z][a-z0-9+.-]*:(?:\/\/\/?)?[^/]/.test(at))
        throw new DbflowError(`the copy "${copy.url}" of the ${a.database} artifact is in no folder below its storage's root.`);
      if (copy.error !== undefined) {
        if (!failed.has(at)) failed.set(at, new Set());
        failed.get(at)!.add(i);
        if (!sites.has(at)) sites.set(at, new Map());
      } else {
        if (!sites.has(at)) sites.set(at, new Map());
        sites.get(at)!.set(i, copy.url);
      }
    }
  });
  const out: BackupSites = { complete: [], incomplete: [] };
  for (const [location, held] of sites) {
    const missing = artifacts.map((_, i) => i).filter((i) => !held.has(i));
    if (!missing.length) {
      out.complete.push({ location, artifacts: artifacts.map((a, i) => ({ ...a, url: held.get(i)! })) });
      continue;
    }
    const names = missing.map((i) => `${artifacts[i]!.database} (${path.posix.relative(primary, firsts[i]!)})`);
    if (missing.every((i) => failed.get(location)?.has(i))) {
      out.incomplete.push({ location, missing: names });
      continue;
    }
    throw new DbflowError(
      `the backup's copies in "${location}" lack ${names.join(', ')}: every upload of the run must write a copy there too (the same list of repositories in each "to:"), or that repository would hold part of a backup.`,
    );
  }
  return out;
}

// Pipeline files in a folder, followed with chokidar: what `dbflow watch` and `dbflow daemon` share.
import type { FSWatcher } from 'chokidar';

export interface PipelineWatchHandlers {
  /** A pipeline file appeared (also once for each file at start) or was saved. */
  changed: (file: string) => void;
  removed?: (file: string) => void;
  /** The initial scan is done. */
  ready?: () => void;
}

/** Follows the *.yaml/*.yml files in `dir` (and, when `recursive`, its subfolders); a save is seen once its size has held still for 100 ms. */
export async function watchPipelines(dir: string, on: PipelineWatchHandlers, recursive: boolean): Promise<FSWatcher> {
  const { watch } = await import('chokidar');
  // A save is often a truncate and then a write: read a file only once its size has held still.
  const watcher = watch(dir, {
    ignoreInitial: false,
    ...(!recursive && { depth: 0 }),
    awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
    ignored: (p, stats) => Boolean(stats?.isFile() && !/\.ya?ml$/.test(p)),
  });
  watcher.on('add', on.changed).on('change', on.changed);
  if (on.removed) watcher.on('unlink', on.removed);
  if (on.ready) watcher.on('ready', on.ready);
  return watcher;
}

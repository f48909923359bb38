// What a run's templates see and the databases they fill in: secrets read, vars rendered, URLs anchored.
import type { DatabaseConfig } from '../plugins/types.js';
import { anchorUrls } from '../spec/paths.js';
import type { Pipeline } from '../spec/pipeline.js';
import { renderValue } from '../spec/templates.js';
import { passwordsOf, readSecrets } from './secrets.js';

/** The run a template context describes. */
export interface RunValuesRun {
  id: string;
  started_at: string;
  dir: string;
}

/** A run's template context and its databases, with every secret value (to mask) listed. */
export interface RunValues {
  context: Record<string, unknown>;
  databases: Record<string, DatabaseConfig>;
  /** Secret values and database passwords: never shown. */
  hidden: string[];
}

/**
 * Reads the secrets, renders `vars` and each database entry. A secret that cannot be read or a template
 * that fails throws; `hidden` then holds what was read so far through `onSecret`, which sees each value first.
 */
export function resolveRunValues(
  pipeline: Pipeline,
  env: Record<string, string | undefined>,
  baseDir: string,
  run: RunValuesRun,
  onSecret: (value: string) => void = () => undefined,
): RunValues {
  const hidden: string[] = [];
  const hide = (v: string): void => {
    hidden.push(v);
    onSecret(v);
  };
  const secrets = readSecrets(pipeline.secrets, env, baseDir);
  Object.values(secrets).forEach(hide);
  const base = { env, pipeline: { name: pipeline.name, file: pipeline.file, sha256: pipeline.sha256 }, run };
  const vars = renderValue(pipeline.vars, base) as Record<string, unknown>;
  const context = { ...base, vars, secrets };
  const databases: Record<string, DatabaseConfig> = {};
  for (const [name, db] of Object.entries(pipeline.databases)) {
    databases[name] = {
      name,
      driver: db.driver,
      url: anchorUrls(renderValue(db.url, context), baseDir) as string,
      ...(db.password !== undefined && { password: String(renderValue(db.password, context)) }),
      options: renderValue(db.options, context) as Record<string, unknown>,
      ...(db.assertions && { assertions: db.assertions }),
    };
    passwordsOf(databases[name]).forEach(hide);
  }
  return { context, databases, hidden };
}

// Names of the scratch databases that restore-tests make: they carry the run id, so a dead run's can be found and reaped.

/** The name every scratch database of a run starts with: `dbflow_verify_<run id, lower case, [^a-z0-9_] as _>_`. */
export function scratchPrefix(runId: string): string {
  return `dbflow_verify_${runId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_`;
}

/** The scratch database name of a run's restore-test of `database`: `dbflow_verify_<run>_<db>`. */
export function scratchDatabaseName(runId: string, database: string): string {
  return `${scratchPrefix(runId)}${database.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

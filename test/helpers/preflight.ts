// Preflight checks of a built-in driver, called the way `dbflow init` calls them.
import { builtinRegistry, type PreflightReport, type PreflightUse } from '../../src/index.js';
import { stepContext } from './step-context.js';

/** What varies between the checks: the entry's password and options, a signal. */
export interface PreflightCall {
  password?: string;
  options?: Record<string, unknown>;
  signal?: AbortSignal;
  /** What the pipeline does with the database (default: restore-tested, not in a coordinated snapshot). */
  use?: Partial<PreflightUse>;
}

/** The report of `driver`'s preflight of the database `app` at `url`. */
export async function preflightOf(driver: string, url: string, o: PreflightCall = {}): Promise<PreflightReport> {
  const d = (await builtinRegistry()).drivers.get(driver)!;
  const { ctx, dispose } = await stepContext({ with: {}, ...(o.signal && { signal: o.signal }) });
  try {
    return await d.preflight!(ctx, {
      db: {
        name: 'app',
        driver,
        url,
        ...(o.password !== undefined && { password: o.password }),
        options: o.options ?? {},
      },
      use: { coordinated: false, restoreTest: true, ...o.use },
    });
  } finally {
    await dispose();
  }
}

/** The statements a report asks an administrator to run, in order. */
export function grantsOf(report: PreflightReport): string[] {
  return report.missing.map((m) => m.grant);
}

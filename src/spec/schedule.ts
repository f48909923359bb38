// A pipeline's schedule, checked: a cron expression (parsed by croner) and an IANA time zone.
import { Cron } from 'croner';
import { didYouMean } from './suggest.js';

/** Why `zone` is not a time zone this machine knows (with a did-you-mean), or undefined when it is. */
export function timezoneProblem(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return undefined;
  } catch {
    const known = [...Intl.supportedValuesOf('timeZone'), 'UTC'];
    return `unknown time zone "${zone}"; use an IANA name such as Europe/Berlin or UTC.${didYouMean(zone, known)}`;
  }
}

/** Why `expr` is not a cron expression, or undefined when it is. */
export function cronProblem(expr: string): string | undefined {
  try {
    new Cron(expr, { paused: true });
    return undefined;
  } catch (err) {
    const reason = (err as Error).message.replace(/^CronPattern:\s*/, '');
    return `schedule "${expr}" is not a cron expression (${reason}); use 5 fields "minute hour day month weekday", e.g. "0 2 * * *", or 6 with seconds first.`;
  }
}

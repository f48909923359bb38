// Durations as a pipeline writes them: 500ms, 30s, 5m, 2h, 1d.

/** A duration in a schema; parseDuration reads text of this shape. */
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';

const DURATION = new RegExp(DURATION_PATTERN);
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s` → 30000. The schema has checked the shape already. */
export function parseDuration(text: string): number {
  const unit = DURATION.exec(text)?.at(-1); // the pattern's last group
  if (unit === undefined) throw new Error(`not a duration: ${text}`);
  return Math.round(Number(text.slice(0, -unit.length)) * UNITS[unit]!);
}

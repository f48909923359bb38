// Grandfather-father-son retention: which backups a policy keeps, and why (pure).

/** How many backups to keep, by rule; a backup kept by any rule is kept (the union). */
export interface RetentionPolicy {
  /** The newest N backups. */
  last: number;
  /** The newest backup of each of the newest N UTC days that have backups. */
  daily: number;
  /** The newest backup of each of the newest N ISO weeks (UTC) that have backups. */
  weekly: number;
  /** The newest backup of each of the newest N UTC months that have backups. */
  monthly: number;
}

/** A backup as retention sees it. */
export interface RetentionCandidate {
  id: string;
  time: Date;
  /** Its restore-test passed (manifest status `verified`): the newest such backup is always kept. */
  verified: boolean;
  /** Backups of different groups (pipelines) are pruned separately. */
  group?: string;
}

/** The verdict on one backup: kept with the rules that keep it, or removed (no reasons). */
export interface RetentionDecision<T extends RetentionCandidate> {
  backup: T;
  keep: boolean;
  reasons: string[];
}

/** The reason the newest verified backup is kept even when no rule keeps it. */
export const NEWEST_VERIFIED = 'newest verified';

/** The UTC day of a time: `2026-03-18`. */
export function dayKey(t: Date): string {
  return t.toISOString().slice(0, 10);
}

/** The UTC month of a time: `2026-03`. */
export function monthKey(t: Date): string {
  return t.toISOString().slice(0, 7);
}

/** The ISO 8601 week of a time in UTC: `2026-W12` (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeekKey(t: Date): string {
  const thursday = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  thursday.setUTCDate(thursday.getUTCDate() + 4 - (thursday.getUTCDay() || 7));
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 / 7) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** Applies `policy` to each group of backups; the verdicts come newest first. */
export function retain<T extends RetentionCandidate>(backups: readonly T[], policy: RetentionPolicy): RetentionDecision<T>[] {
  const sorted = [...backups].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const reasons = new Map<T, string[]>(sorted.map((b) => [b, []]));
  const groups = new Map<string, T[]>();
  for (const b of sorted) {
    const key = b.group ?? '';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(b);
  }
  for (const group of groups.values()) {
    group.slice(0, Math.max(0, policy.last)).forEach((b, i) => reasons.get(b)!.push(`last ${i + 1}/${policy.last}`));
    const buckets = (n: number, rule: string, key: (t: Date) => string): void => {
      const seen = new Set<string>();
      for (const b of group) {
        const k = key(b.time);
        if (seen.has(k)) continue;
        if (seen.size >= n) break;
        seen.add(k);
        reasons.get(b)!.push(`${rule} ${k}`);
      }
    };
    buckets(policy.daily, 'daily', dayKey);
    buckets(policy.weekly, 'weekly', isoWeekKey);
    buckets(policy.monthly, 'monthly', monthKey);
    const verified = group.find((b) => b.verified);
    if (verified) reasons.get(verified)!.push(NEWEST_VERIFIED);
  }
  return sorted.map((b) => {
    const why = reasons.get(b)!;
    return { backup: b, keep: why.length > 0, reasons: why };
  });
}

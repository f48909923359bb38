// Run ids (`20261124T020000Z-3fa2`) as times: the age of objects that have no manifest.

const RUN_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-[0-9A-Za-z]+)?$/;

/** The UTC start time a run id encodes, or undefined when `id` is not a run id. */
export function runIdTime(id: string): Date | undefined {
  const m = RUN_ID.exec(id);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return t.getUTCMonth() === mo - 1 && t.getUTCDate() === d ? t : undefined;
}

/** The time of the innermost folder of `url` that is named like a run id (`…/<run-id>/x.dump`). */
export function runTimeInPath(url: string): Date | undefined {
  const segments = url
    .replace(/^[a-z][a-z0-9+.-]*:\/*/i, '')
    .split('/')
    .slice(0, -1);
  for (const s of segments.reverse()) {
    const t = runIdTime(s);
    if (t) return t;
  }
  return undefined;
}

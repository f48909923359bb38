// Did-you-mean: the closest known name to a misspelled one.
import { distance } from 'fastest-levenshtein';

/** The candidate closest to `wrong`, when it is close enough to be a likely typo. */
export function closest(wrong: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = distance(wrong.toLowerCase(), c.toLowerCase());
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  const limit = Math.max(2, Math.floor(wrong.length / 3));
  return best !== undefined && bestScore <= limit ? best : undefined;
}

/** ` Did you mean "x"?` or, without a close match, the list of known names. */
export function didYouMean(wrong: string, candidates: Iterable<string>): string {
  const all = [...candidates];
  const hit = closest(wrong, all);
  if (hit) return ` Did you mean "${hit}"?`;
  if (all.length === 0) return '';
  const shown = all
    .slice(0, 8)
    .map((c) => `"${c}"`)
    .join(', ');
  return ` Known: ${shown}${all.length > 8 ? ', …' : ''}.`;
}

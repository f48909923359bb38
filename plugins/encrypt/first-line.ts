// The first line of an error's message: openpgp.js puts details a user needs on line one only.
export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

// Quoting for the stock shell commands that plugins show (never used to run anything: dbflow runs programs without a shell).

/** `s` as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

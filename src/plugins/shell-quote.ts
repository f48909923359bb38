// Quoting for the stock shell commands that plugins show (never used to run anything: dbflow runs programs without a shell).

/** `s` as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `s` as one shell word: bare when it holds only characters no POSIX shell treats specially, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : shellQuote(s);
}

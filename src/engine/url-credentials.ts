// Credentials in URLs, removed from text that is shown or recorded.

// A password in a URL's user info, up to the last "@" of the authority (where a valid URL ends it) …
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*):[^\s/?#]*@/gi;
// … or, for a password pasted unencoded with "/", "?" or "#" in it, up to the last "@" of the token (unless "host:port/…").
const USERINFO_UNENCODED = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'<>]*):([^\s"'<>]*)@/gi;
const SECRET_PARAM =
  /([?&;](?:password|passwd|pwd|secret|token|access_token|key|api_key|apikey|sig|signature|x-amz-[a-z0-9-]+)=)[^&#\s"'<>]*/gi;

/** Text with credentials removed from every URL in it: `user:password@` → `user@`, secret query parameters → `***`. */
export function withoutCredentials(text: string): string {
  return text
    .replace(USERINFO, '$1@')
    .replace(USERINFO_UNENCODED, (match, prefix: string, secret: string) => (/^\d+[/?#]/.test(secret) ? match : `${prefix}@`))
    .replace(SECRET_PARAM, '$1***');
}

// The privileges of the current session, read from SHOW GRANTS: the user's own, PUBLIC's and those of its enabled roles.

/** One `GRANT … ON db.table TO …` line: its privileges (upper case), on a database name pattern or `*`, and a table or `*`. */
export interface Grant {
  privileges: string[];
  db: string;
  table: string;
}

const NAME = '(\\*|`(?:[^`]|``)*`)';
// Routine grants (ON PROCEDURE/FUNCTION/PACKAGE …), role grants (no ON) and proxy grants do not match: none gives what a backup needs.
const GRANT_LINE = new RegExp(`^GRANT (.+?) ON ${NAME}\\.${NAME} TO `);

/**
 * The grants in `lines` (the rows of `SHOW GRANTS`, which on MariaDB lists the grants of the user, of
 * PUBLIC and of every role enabled in the session; information_schema shows only the user's own).
 */
export function parseGrants(lines: readonly string[]): Grant[] {
  const unquote = (name: string): string => (name === '*' ? name : name.slice(1, -1).replace(/``/g, '`'));
  return lines.flatMap((line) => {
    const m = GRANT_LINE.exec(line);
    if (!m) return [];
    // Column privileges (`SELECT (a, b)`) cover only those columns: they are left out.
    const privileges = m[1]!
      .split(/\s*,\s*(?![^(]*\))/)
      .filter((p) => !p.includes('('))
      .map((p) => p.trim().toUpperCase());
    return [{ privileges, db: unquote(m[2]!), table: unquote(m[3]!) }];
  });
}

/**
 * True when `grants` give `privilege` globally (`db` omitted), or on the database `db` (matched against
 * database-level patterns, `_` and `%` being wildcards and `\` their escape), or on `db`.`table`.
 */
export function hasPrivilege(grants: readonly Grant[], privilege: string, db?: string, table?: string): boolean {
  return grants.some(
    (g) =>
      (g.privileges.includes(privilege) || g.privileges.includes('ALL PRIVILEGES') || g.privileges.includes('ALL')) &&
      (g.db === '*' || (db !== undefined && (g.table === '*' ? likePattern(g.db).test(db) : g.db === db && g.table === table))),
  );
}

// A database-level grant's name pattern as a regular expression.
function likePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) source += escapeRegex(pattern[++i]!);
    else source += ch === '%' ? '.*' : ch === '_' ? '.' : escapeRegex(ch);
  }
  return new RegExp(`^${source}$`, 's');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A database name for a GRANT: quoted, its wildcards escaped so that it names that database alone. */
export function grantDatabase(name: string): string {
  return `\`${name.replace(/[\\_%]/g, '\\$&').replace(/`/g, '``')}\``;
}

// The format name of a MariaDB physical base backup artifact.

/** mariadb-backup --backup --stream=xbstream: a whole server's files, unpacked with mbstream -x and prepared before it starts. */
export const MARIABACKUP_FORMAT = 'mariadb-backup-xbstream';

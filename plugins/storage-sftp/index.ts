// The storage-sftp plugin: `sftp://user@host[:port]/path` URLs as a backup repository on an SSH server.
import { definePlugin, shellQuote } from '../../src/plugin-api.js';
import { deleteObject } from './delete.js';
import { getObject } from './get.js';
import { listObjects } from './list.js';
import { putObject } from './put.js';
import { SFTP_CONFIG_SCHEMA } from './session.js';
import { parseObjectUrl } from './url.js';

export default definePlugin({
  name: 'storage-sftp',
  contract: '2.0',
  storages: [
    {
      scheme: 'sftp',
      configSchema: SFTP_CONFIG_SCHEMA,
      put: putObject,
      get: getObject,
      list: listObjects,
      delete: deleteObject,
      // A shell account's `cat` (sftp-only accounts: `sftp user@host:path` to a file first); `/~/x` is `x` in the login folder.
      stockRead: (url) => {
        const loc = parseObjectUrl(url);
        const remote = loc.written.startsWith('/~/') ? loc.written.slice(3) : loc.written;
        return `ssh${loc.port === 22 ? '' : ` -p ${loc.port}`} ${shellQuote(`${loc.username}@${loc.host}`)} ${shellQuote(`cat ${shellQuote(remote)}`)}`;
      },
    },
  ],
});

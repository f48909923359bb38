// The storage-sftp plugin: `sftp://user@host[:port]/path` URLs as a backup repository on an SSH server.
import { definePlugin } from '../../src/index.js';
import { deleteObject } from './delete.js';
import { getObject } from './get.js';
import { listObjects } from './list.js';
import { putObject } from './put.js';

export default definePlugin({
  name: 'storage-sftp',
  storages: [{ scheme: 'sftp', put: putObject, get: getObject, list: listObjects, delete: deleteObject }],
});

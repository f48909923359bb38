// The storage-file plugin: `file://` URLs as a backup repository on a local or mounted disk.
import { definePlugin } from '../../src/plugin-api.js';
import { deleteObject } from './delete.js';
import { getObject } from './get.js';
import { listObjects } from './list.js';
import { putObject } from './put.js';

export default definePlugin({
  name: 'storage-file',
  contract: '2.0',
  storages: [{ scheme: 'file', put: putObject, get: getObject, list: listObjects, delete: deleteObject }],
});

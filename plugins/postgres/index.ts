// The postgres plugin: the `postgres` database driver and the `basebackup` step (physical base backups).
import { definePlugin } from '../../src/plugin-api.js';
import { basebackupStep } from './basebackup.js';
import { postgresDriver } from './driver.js';

export default definePlugin({
  name: 'postgres',
  contract: '2.0',
  steps: [basebackupStep],
  drivers: [postgresDriver],
});

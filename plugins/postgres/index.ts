// The postgres plugin: the `postgres` database driver.
import { definePlugin } from '../../src/plugin-api.js';
import { postgresDriver } from './driver.js';

export default definePlugin({
  name: 'postgres',
  contract: '2.0',
  drivers: [postgresDriver],
});

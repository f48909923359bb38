// The postgres plugin: the `postgres` database driver.
import { definePlugin } from '../../src/plugin-api.js';
import { postgresDriver } from './driver.js';

export default definePlugin({
  name: 'postgres',
  contract: '1.1',
  drivers: [postgresDriver],
});

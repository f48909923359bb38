// The sqlite plugin: the `sqlite` database driver and the `sqlite-seed` demo-data step.
import { definePlugin } from '../../src/plugin-api.js';
import { sqliteDriver } from './driver.js';
import { seedStep } from './seed.js';

export default definePlugin({
  name: 'sqlite',
  contract: '2.0',
  drivers: [sqliteDriver],
  steps: [seedStep],
});

// The mysql plugin: the `mysql` database driver (MariaDB and MySQL) and the `mariabackup` step (physical base backups).
import { definePlugin } from '../../src/plugin-api.js';
import { mysqlDriver } from './driver.js';
import { mariabackupStep } from './mariabackup.js';

export default definePlugin({
  name: 'mysql',
  contract: '2.0',
  steps: [mariabackupStep],
  drivers: [mysqlDriver],
});

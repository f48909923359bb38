// The mysql plugin: the `mysql` database driver (MariaDB and MySQL).
import { definePlugin } from '../../src/plugin-api.js';
import { mysqlDriver } from './driver.js';

export default definePlugin({
  name: 'mysql',
  contract: '2.0',
  drivers: [mysqlDriver],
});

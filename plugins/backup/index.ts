// The generic backup steps; each dispatches on the database's driver or the URL's storage.
import { definePlugin } from '../../src/plugin-api.js';
import { dumpStep } from './dump.js';
import { markStep } from './mark.js';
import { restoreTestStep } from './restore-test.js';
import { rowcountCheckStep } from './rowcount-check.js';
import { snapshotStep } from './snapshot.js';
import { uploadStep } from './upload.js';

export default definePlugin({
  name: 'backup',
  contract: '2.0',
  steps: [snapshotStep, dumpStep, uploadStep, restoreTestStep, rowcountCheckStep, markStep],
});

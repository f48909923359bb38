// The notify plugin: `webhook`, `slack` and `email` steps, e.g. under `on_failure:` or `finally:`.
import { definePlugin } from '../../src/plugin-api.js';
import { emailStep } from './email.js';
import { slackStep } from './slack.js';
import { webhookStep } from './webhook.js';

// Notifications as task steps; retries and timeouts are the pipeline's (`retry:`, `timeout:`).
export default definePlugin({
  name: 'notify',
  contract: '2.0',
  steps: [webhookStep, slackStep, emailStep],
});

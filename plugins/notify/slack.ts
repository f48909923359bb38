// The `slack` step: a message to a Slack incoming webhook (or a compatible one: Mattermost, Rocket.Chat …).
import { defineStep, type JsonSchema } from '../../src/plugin-api.js';
import { timeoutProperty } from './deadline.js';
import { sendJson } from './http.js';
import { deliveryOutputs, type DeliveryOutputs } from './webhook.js';

/** `with` as the user wrote it. */
export interface SlackWith {
  url: string;
  text: string;
  username?: string;
  icon_emoji?: string;
  channel?: string;
  timeout?: string;
}

const withSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'text'],
  properties: {
    url: { type: 'string', format: 'url', 'x-secret': true, description: 'The incoming webhook URL; put it in `secrets:`.' },
    text: { type: 'string', minLength: 1, description: 'The message (Slack mrkdwn).' },
    username: { type: 'string', minLength: 1, description: "The sender's name, where the webhook allows overriding it." },
    icon_emoji: { type: 'string', pattern: '^:[^:\\s]+:$', description: 'e.g. :rotating_light:' },
    channel: { type: 'string', minLength: 1, description: '#channel or @user, where the webhook allows overriding it.' },
    timeout: timeoutProperty('10s'),
  },
};

// `{ text, username?, icon_emoji?, channel? }` as JSON to the webhook.
export const slackStep = defineStep<SlackWith, DeliveryOutputs>({
  uses: 'slack',
  kind: 'task',
  description: 'Post a message to a Slack-compatible incoming webhook.',
  with: withSchema,
  outputs: deliveryOutputs,
  async run(ctx) {
    const { url, text, username, icon_emoji, channel, timeout = '10s' } = ctx.with;
    const body = { text, ...(username && { username }), ...(icon_emoji && { icon_emoji }), ...(channel && { channel }) };
    const { status } = await sendJson(ctx, { step: 'slack', url, method: 'POST', body, timeout });
    ctx.log.info(`slack: delivered (HTTP ${status})`);
    return { outputs: { status } };
  },
});

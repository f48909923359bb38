// The `webhook` step: POST (or PUT) a JSON body to a URL.
import { defineStep, type JsonSchema } from '../../src/plugin-api.js';
import { timeoutProperty } from './deadline.js';
import { sendJson } from './http.js';

/** `with` as the user wrote it. */
export interface WebhookWith {
  url: string;
  body: unknown;
  headers?: Record<string, string>;
  method?: 'POST' | 'PUT';
  timeout?: string;
}

/** The HTTP status of a delivery. */
export interface DeliveryOutputs {
  status: number;
}

const withSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'body'],
  properties: {
    url: { type: 'string', format: 'url', 'x-secret': true, description: 'http(s) URL; put it in `secrets:`, it usually carries a token.' },
    body: { type: ['object', 'array', 'string'], description: 'Sent as JSON; strings inside may use templates such as {{ run.error }}.' },
    headers: {
      type: 'object',
      additionalProperties: { type: 'string' },
      'x-secret': true,
      description: 'Extra request headers, e.g. Authorization.',
    },
    method: { enum: ['POST', 'PUT'], default: 'POST' },
    timeout: timeoutProperty('10s'),
  },
};

/** The outputs of `webhook` and `slack`. */
export const deliveryOutputs: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { status: { type: 'integer', description: 'The HTTP status of the answer (2xx).' } },
};

// A JSON body to any webhook; a non-2xx answer fails the step (retry it with the step's `retry:`).
export const webhookStep = defineStep<WebhookWith, DeliveryOutputs>({
  uses: 'webhook',
  kind: 'task',
  description: 'POST (or PUT) a JSON body to a webhook URL.',
  with: withSchema,
  outputs: deliveryOutputs,
  async run(ctx) {
    const { url, body, headers, method = 'POST', timeout = '10s' } = ctx.with;
    const { status } = await sendJson(ctx, { step: 'webhook', url, method, ...(headers && { headers }), body, timeout });
    ctx.log.info(`webhook: delivered (HTTP ${status})`);
    return { outputs: { status } };
  },
});

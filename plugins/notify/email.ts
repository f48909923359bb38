// The `email` step: a plain-text e-mail over SMTP.
import { defineStep, type JsonSchema } from '../../src/plugin-api.js';
import { timeoutProperty } from './deadline.js';
import { sendMail } from './smtp.js';

/** `with` as the user wrote it. */
export interface EmailWith {
  host: string;
  port?: number;
  secure?: boolean;
  user?: string;
  password?: string;
  from: string;
  to: string | string[];
  subject: string;
  text: string;
  timeout?: string;
  tls_reject_unauthorized?: boolean;
}

/** The outputs: the Message-ID and the recipients the server accepted. */
export interface EmailOutputs {
  message_id: string;
  accepted: string[];
}

const address = { type: 'string', minLength: 1 };

const withSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'from', 'to', 'subject', 'text'],
  properties: {
    host: { type: 'string', minLength: 1, description: 'The SMTP server.' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 587 },
    secure: { type: 'boolean', default: false, description: 'TLS from the start (port 465); false: STARTTLS when the server offers it.' },
    user: { type: 'string', minLength: 1, description: 'Login name; with `password`.' },
    password: { type: 'string', 'x-secret': true, description: 'Write "{{ secrets.x }}"; never logged.' },
    from: { ...address, description: 'Sender, e.g. "dbflow <backup@example.com>".' },
    to: {
      description: 'One recipient (or several, comma-separated) or a list.',
      anyOf: [address, { type: 'array', minItems: 1, items: address }],
    },
    subject: { type: 'string' },
    text: { type: 'string', description: 'The plain-text body.' },
    timeout: timeoutProperty('30s'),
    tls_reject_unauthorized: { type: 'boolean', default: true, description: 'false accepts any server certificate (test servers only).' },
  },
  dependentRequired: { user: ['password'], password: ['user'] },
};

const outputsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    message_id: { type: 'string', description: 'The Message-ID header, e.g. <…@example.com>.' },
    accepted: { type: 'array', items: { type: 'string' }, description: 'Recipients the server accepted.' },
  },
};

// Sends one message; a refused login or recipient fails the step, the password never shows.
export const emailStep = defineStep<EmailWith, EmailOutputs>({
  uses: 'email',
  kind: 'task',
  description: 'Send a plain-text e-mail over SMTP.',
  with: withSchema,
  outputs: outputsSchema,
  async run(ctx) {
    const w = ctx.with;
    const server = {
      host: w.host,
      port: w.port ?? 587,
      secure: w.secure ?? false,
      ...(w.user !== undefined && { user: w.user }),
      ...(w.password !== undefined && { password: w.password }),
      timeout: w.timeout ?? '30s',
      rejectUnauthorized: w.tls_reject_unauthorized ?? true,
    };
    const to = typeof w.to === 'string' ? [w.to] : w.to;
    const sent = await sendMail(ctx, server, { from: w.from, to, subject: w.subject, text: w.text });
    if (sent.rejected.length) ctx.log.warn(`email: the server refused ${sent.rejected.join(', ')}`);
    const n = sent.accepted.length;
    ctx.log.info(`email: sent to ${n} ${n === 1 ? 'recipient' : 'recipients'}`);
    return { outputs: { message_id: sent.messageId, accepted: sent.accepted } };
  },
});

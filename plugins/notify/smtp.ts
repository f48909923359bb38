// One e-mail over SMTP through nodemailer (loaded on first use), and its failures as clear errors that
// never carry the password.
import { CancelledError, DbflowError, type StepContext } from '../../src/plugin-api.js';
import { deadline } from './deadline.js';

/** Where and how to connect. */
export interface SmtpServer {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  password?: string;
  timeout: string;
  rejectUnauthorized: boolean;
}

/** The message. */
export interface Mail {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

/** What the server accepted. */
export interface Sent {
  messageId: string;
  accepted: string[];
  rejected: string[];
}

/** What nodemailer's errors carry. */
interface SmtpError {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  message?: string;
}

// Sends `mail`; a refused login, an unreachable server, a refused recipient or the timeout is a DbflowError.
export async function sendMail(ctx: StepContext<unknown>, server: SmtpServer, mail: Mail): Promise<Sent> {
  const { createTransport } = await import('nodemailer');
  const limit = deadline(ctx.signal, server.timeout);
  const transport = createTransport({
    host: server.host,
    port: server.port,
    secure: server.secure,
    ...(server.user !== undefined && { auth: { user: server.user, pass: server.password ?? '' } }),
    connectionTimeout: limit.ms,
    greetingTimeout: limit.ms,
    socketTimeout: limit.ms,
    tls: { rejectUnauthorized: server.rejectUnauthorized },
    logger: false,
    debug: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  try {
    const info = await transport.sendMail({ ...mail, signal: limit.signal });
    return { messageId: info.messageId, accepted: info.accepted.map(String), rejected: info.rejected.map(String) };
  } catch (err) {
    const where = `the SMTP server ${server.host}:${server.port}`;
    if (limit.expired())
      throw new DbflowError(`email: ${where} did not finish within ${server.timeout}; raise "timeout", or check host, port and "secure".`);
    if (ctx.signal.aborted) throw new CancelledError(`email: stopped before ${where} accepted the message.`);
    throw smtpFailure(err, where, server);
  } finally {
    transport.close();
  }
}

// A DbflowError for a nodemailer error: what failed, the server's answer, and what to check.
function smtpFailure(err: unknown, where: string, server: SmtpServer): DbflowError {
  const e = (err ?? {}) as SmtpError;
  const said = scrub(e.response ?? e.message ?? String(err), server);
  if (e.responseCode === 530 || e.code === 'ENOAUTH')
    return new DbflowError(`email: ${where} needs a login (${said}); set "user" and "password".`);
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(said)?.[1];
  if (ssl === 'wrong version number') {
    return new DbflowError(
      `email: ${where} does not speak TLS at once; set "secure: false" (STARTTLS, port 587) or use its TLS port (465).`,
    );
  }
  switch (e.code) {
    case 'EAUTH':
      return new DbflowError(`email: ${where} refused the login of user "${server.user ?? ''}" (${said}); check "user" and "password".`);
    case 'EENVELOPE':
      return new DbflowError(`email: ${where} refused the sender or the recipients (${said}); check "from" and "to".`);
    case 'EMESSAGE':
      return new DbflowError(`email: ${where} refused the message (${said}).`);
    case 'ETLS':
      return new DbflowError(
        `email: TLS with ${where} failed (${ssl ?? said}); check "secure" (true for port 465, false for STARTTLS on 587)${server.rejectUnauthorized ? " and the server's certificate" : ''}.`,
      );
    case 'EDNS':
      return new DbflowError(`email: cannot resolve the SMTP host "${server.host}" (${e.originalCode ?? said}); check "host".`);
    case 'ETIMEDOUT':
      return new DbflowError(`email: ${where} stopped answering (${said}); check host, port and "secure", or raise "timeout".`);
    case 'ESOCKET':
    case 'ECONNECTION':
      if (e.originalCode && /^E[A-Z]+$/.test(e.originalCode)) {
        return new DbflowError(`email: could not connect to ${where} (${e.originalCode}); check "host", "port" and the network.`);
      }
      if (/certificate|self[- ]signed|SSL|TLS/i.test(said)) {
        return new DbflowError(`email: TLS with ${where} failed (${ssl ?? said}); check "secure" and the server's certificate.`);
      }
      return new DbflowError(`email: the connection to ${where} failed (${said}); check "host", "port" and "secure".`);
    default:
      return new DbflowError(`email: sending through ${where} failed (${e.code ? `${e.code}: ` : ''}${said}).`);
  }
}

// The text without the password, also as an AUTH PLAIN/LOGIN token would carry it (base64).
function scrub(text: string, server: SmtpServer): string {
  const { user = '', password } = server;
  let out = text.replace(/\s+/g, ' ').trim();
  if (!password) return out;
  const forms = [password, b64(password), b64(`\0${user}\0${password}`), b64(`${user}\0${user}\0${password}`)];
  for (const f of forms) out = out.split(f).join('***');
  return out;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

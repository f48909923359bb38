// A real SMTP server on 127.0.0.1 (smtp-server) that requires AUTH PLAIN/LOGIN with one user and
// password, offers no TLS, and records every login attempt and message.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One AUTH attempt. */
export interface Login {
  method: string;
  username: string;
  ok: boolean;
}

/** One message the server accepted. */
export interface ReceivedMail {
  /** The authenticated user of the session. */
  user: string;
  from: string;
  to: string[];
  /** The message as sent (headers and encoded body). */
  raw: string;
  /** The header block, unfolded, names lower-cased. */
  headers: Record<string, string>;
  /** The body of a single-part message, quoted-printable or base64 decoded. */
  text: string;
}

export interface SmtpSink {
  port: number;
  logins: Login[];
  mails: ReceivedMail[];
  close(): Promise<void>;
}

// Starts a server on a free port that accepts `user` with `password` only.
export async function startSmtpSink(credentials: { user: string; password: string }): Promise<SmtpSink> {
  const logins: Login[] = [];
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    secure: false,
    authOptional: false,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, done) {
      const ok = auth.username === credentials.user && auth.password === credentials.password;
      logins.push({ method: auth.method, username: auth.username ?? '', ok });
      if (ok) done(null, { user: auth.username });
      else done(new Error('Invalid username or password'));
    },
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const { mailFrom } = session.envelope;
        mails.push({
          user: String(session.user ?? ''),
          from: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMessage(raw),
        });
        done();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return { port, logins, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

// Headers and decoded body of a single-part message (what nodemailer sends for a text-only mail).
function parseMessage(raw: string): { headers: Record<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let text = body;
  if (encoding === 'quoted-printable') {
    const escaped = body
      .replace(/=\r\n/g, '')
      .replace(/%/g, '%25')
      .replace(/=([0-9A-F]{2})/gi, (_, h: string) => `%${h}`);
    text = decodeURIComponent(escaped);
  } else if (encoding === 'base64') {
    text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { headers, text: text.replace(/\r\n/g, '\n') };
}

// A real HTTP server on 127.0.0.1 that records every request (method, path, headers, JSON body) and
// answers with a chosen status, for tests of steps that call webhooks.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the sink received. */
export interface RecordedRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as text. */
  raw: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  body: unknown;
  /** How long after the request arrived its connection closed, once it has (answered, or given up by the client). */
  closedAfterMs?: number;
}

/** How the sink answers from now on. */
export interface SinkAnswer {
  status: number;
  /** Response body (text). */
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface HttpSink {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  port: number;
  requests: RecordedRequest[];
  answer(answer: SinkAnswer): void;
  close(): Promise<void>;
}

// Starts a sink on a free port; it answers 200 "ok" until told otherwise.
export async function startHttpSink(): Promise<HttpSink> {
  const requests: RecordedRequest[] = [];
  let current: SinkAnswer = { status: 200, body: 'ok' };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const request: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, body };
      requests.push(request);
      const arrived = Date.now();
      const { status, body: text = '', delayMs = 0 } = current;
      const timer = setTimeout(() => res.writeHead(status, { 'content-type': 'text/plain' }).end(text), delayMs);
      res.on('close', () => {
        clearTimeout(timer);
        request.closedAfterMs = Date.now() - arrived;
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    answer(answer) {
      current = answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// A TCP proxy between the AWS SDK and s3rver that breaks connections on purpose: cut (reset) or stall after N bytes.
import net from 'node:net';

/** What the proxy does to each connection, counting the bytes the client sent on it. */
export interface ProxyFaults {
  /** Reset a connection once the client has sent more than this many bytes on it. */
  cutAfter?: number;
  /** Cut at most this many connections (default: all that pass `cutAfter`); later ones pass untouched. */
  maxCuts?: number;
  /** Stop forwarding (keep the connection open, drop what comes) once the client sent more than this. */
  stallAfter?: number;
  /** Let this many connections pass `stallAfter` untouched before stalling the later ones. */
  stallSkip?: number;
  /** Keep the request lines and headers the client sent, for `requests()`. */
  record?: boolean;
  /** Stall a connection (forward nothing more) at a request whose head matches, before it reaches the server; then call `onStall`. */
  stallOn?: RegExp;
  onStall?: (head: string) => void;
  /** Reset a connection at a request whose head matches, before it reaches the server (every time). */
  cutOn?: RegExp;
}

/** A running proxy. */
export interface FaultyProxy {
  port: number;
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Connections cut so far. */
  cuts(): number;
  /** Connections stalled so far. */
  stalls(): number;
  /** Request heads (request line and headers) seen so far, when recording. */
  requests(): string[];
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a free port) to `targetPort` on 127.0.0.1. */
export async function startProxy(targetPort: number, faults: ProxyFaults = {}): Promise<FaultyProxy> {
  let cuts = 0;
  let stalls = 0;
  let spared = 0;
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sent = 0;
    let stalled = false;
    let spare = false;
    let pending = '';
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      let matched: string | undefined;
      let cut = false;
      if (faults.record || faults.stallOn || faults.cutOn) {
        const text = chunk.toString('latin1');
        // A request that starts a chunk follows a body that need not end in CRLF: look from here.
        pending = /^(?:GET|PUT|POST|DELETE|HEAD) \S+ HTTP\/1\.1\r\n/.test(text) ? text : pending + text;
        // Heads are found by their request line; bodies in between are skipped.
        let seen = 0;
        for (const m of pending.matchAll(/(?:^|\r\n)((?:GET|PUT|POST|DELETE|HEAD) \S+ HTTP\/1\.1\r\n[\s\S]*?\r\n)\r\n/g)) {
          heads.push(m[1]!);
          if (faults.stallOn?.test(m[1]!)) matched ??= m[1]!;
          if (faults.cutOn?.test(m[1]!)) cut = true;
          seen = m.index + m[0].length;
        }
        pending = pending.slice(seen).slice(-8192);
      }
      if (stalled) return;
      if (cut) {
        cuts++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      if (matched) {
        stalled = true;
        stalls++;
        faults.onStall?.(matched);
        return;
      }
      if (faults.cutAfter !== undefined && sent > faults.cutAfter && cuts < (faults.maxCuts ?? Infinity)) {
        cuts++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      if (faults.stallAfter !== undefined && sent > faults.stallAfter && !spare) {
        if (spared < (faults.stallSkip ?? 0)) {
          spare = true;
          spared++;
        } else {
          stalled = true;
          stalls++;
          return;
        }
      }
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', () => {
        sockets.delete(s);
        drop();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    cuts: () => cuts,
    stalls: () => stalls,
    requests: () => [...heads],
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

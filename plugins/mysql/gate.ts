// A relay between the dump tool and the server that holds the dump's START TRANSACTION until the barrier is held.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { DbflowError, stopReading } from '../../src/plugin-api.js';
import type { MyConnection } from './url.js';

// The statements a dump tool sends to begin its consistent read (mariadb-dump: FLUSH … only with
// options dbflow does not give; START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */).
const GATED = /^\s*(?:\/\*.*?\*\/\s*)*(START\s+TRANSACTION|FLUSH\s)/is;
const START = /^\s*(?:\/\*.*?\*\/\s*)*START\s+TRANSACTION/is;
const COM_QUERY = 0x03;
// After START TRANSACTION the connection is carried by a `cat` each way (stdin: the dump tool's socket, stdout:
// the server's; given as 0 and 1 because a child's stdio is made blocking, and cat needs that; copied to 3 and 4
// because an asynchronous list starts with /dev/null as its stdin). When either ends, `kill 0` ends the whole
// group, which closes both connections: the server's session ends as soon as the dump does, also when dbflow
// itself was killed (the dump then dies on its closed output). PWD, which sh exports, is unset: cat needs nothing.
const RELAY = 'unset PWD; exec 3<&0 4>&1; ( cat <&3 >&4; kill 0 ) & cat <&4 >&3; kill 0';
// Unix socket paths longer than this do not fit in sockaddr_un.
const MAX_SOCKET_PATH = 100;

// Ends a relay's process group (it may be gone already).
function stopGroup(relay: ChildProcess): void {
  try {
    if (relay.pid !== undefined) process.kill(-relay.pid, 'SIGTERM');
  } catch {
    // ended
  }
}

/**
 * True when a gate can serve this connection: a server on this machine (socket or loopback), without
 * TLS, so the relay can read the protocol. (The dump tool trusts the gate's unix socket as a secure
 * transport; what it sends there must not go on over a network.)
 */
export function gateable(conn: MyConnection): boolean {
  const local = conn.socket !== undefined || ['127.0.0.1', 'localhost', '::1'].includes(conn.host);
  return local && (conn.sslMode === undefined || conn.sslMode === 'DISABLED');
}

/**
 * Listens on a unix socket in `dir` for one client (the dump tool) and relays it to the server. The
 * client's handshake and session setup pass through; its first `START TRANSACTION` (or `FLUSH`) is
 * held: `waiting` resolves then. `pass()` lets it through and resolves once the server has answered
 * the START TRANSACTION, so the dump's snapshot has started. From then on dbflow reads none of the
 * dump's bytes: a relay process group (a `cat` each way) holds the two connections, at a fraction of
 * the CPU of relaying them through Node.
 */
export class DumpGate {
  readonly socketPath: string;
  readonly waiting: Promise<void>;
  private readonly server: Server;
  private client: Socket | undefined;
  private upstream: Socket | undefined;
  // setup: reading the client's packets; held: its START TRANSACTION waits; passing: reading on until
  // START TRANSACTION went through; answer: the server's next bytes answer it; open: bytes flow unread.
  private state: 'setup' | 'held' | 'passing' | 'answer' | 'open' = 'setup';
  private pending: Buffer = Buffer.alloc(0);
  private held: Buffer | undefined;
  private started: (() => void) | undefined;
  private fail: (error: Error) => void = () => undefined;
  private reached: () => void = () => undefined;
  private relay: ChildProcess | undefined;

  private constructor(
    dir: string,
    private readonly conn: MyConnection,
  ) {
    this.socketPath = path.join(dir, `gate-${Math.random().toString(36).slice(2, 8)}.sock`);
    this.waiting = new Promise<void>((resolve, reject) => {
      this.reached = resolve;
      this.fail = reject;
    });
    this.waiting.catch(() => undefined);
    this.server = createServer((socket) => this.accept(socket));
  }

  /** A listening gate, or undefined when its socket path would not fit (the caller falls back). */
  static async open(dir: string, conn: MyConnection): Promise<DumpGate | undefined> {
    const gate = new DumpGate(dir, conn);
    if (gate.socketPath.length > MAX_SOCKET_PATH) return undefined;
    gate.server.listen(gate.socketPath);
    await once(gate.server, 'listening');
    return gate;
  }

  /** The connection the dump tool is given: the gate's socket, no TLS (the relay reads the protocol). */
  clientConnection(): MyConnection {
    const { sslCa: _ca, ...conn } = this.conn;
    return { ...conn, host: 'localhost', socket: this.socketPath, sslMode: 'DISABLED' };
  }

  /** Lets the held statement through; resolves once the server has answered the dump's START TRANSACTION. */
  pass(): Promise<void> {
    const held = this.held;
    if (this.state !== 'held' || !held) return Promise.reject(new DbflowError('the dump tool is not waiting at the gate'));
    const started = new Promise<void>((resolve, reject) => {
      this.started = resolve;
      this.fail = reject;
    });
    this.held = undefined;
    this.state = 'passing';
    this.send(held);
    this.readPackets();
    this.client?.resume();
    return started;
  }

  /** Ends the relay and both connections. */
  close(error?: Error): void {
    if (this.relay) stopGroup(this.relay);
    this.server.close();
    this.client?.destroy();
    this.upstream?.destroy();
    this.fail(error ?? new DbflowError('the gate was closed before the dump started its transaction'));
  }

  private accept(client: Socket): void {
    this.server.close(); // one client only
    if (this.client) return void client.destroy();
    this.client = client;
    const upstream = this.conn.socket ? createConnection(this.conn.socket) : createConnection(this.conn.port, this.conn.host);
    this.upstream = upstream;
    upstream.setNoDelay(true);
    const lost = (side: string) => (error?: Error) => {
      if (this.state !== 'open')
        this.fail(
          new DbflowError(
            `mariadb-dump's connection ended before its transaction began (${side}${error ? `: ${error.message}` : ' closed'})`,
          ),
        );
      client.destroy();
      upstream.destroy();
    };
    client.on('error', lost('mariadb-dump'));
    upstream.on('error', lost('server'));
    client.on('close', () => lost('dump tool')());
    upstream.on('close', () => lost('server')());
    upstream.on('data', (chunk: Buffer) => {
      if (this.state === 'answer') {
        // The answer to START TRANSACTION: the client sends nothing more until it has it, and the server
        // nothing more until the client asks. Reading stops on both sides in this tick, for the hand-over.
        this.state = 'open';
        stopReading(upstream);
        stopReading(client);
        this.started?.();
        client.write(chunk, () => void this.handOver());
        return;
      }
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    client.on('data', (chunk: Buffer) => {
      if (this.state === 'answer' || this.state === 'open') return this.send(chunk);
      this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
      this.readPackets();
    });
  }

  // Gives both connections to the relay (a process group of its own) and closes them here. (No fallback to
  // relaying in Node: a child's start makes the sockets blocking, which Node's event loop cannot read.)
  private async handOver(): Promise<void> {
    const { client, upstream } = this;
    if (!client || !upstream || client.destroyed || upstream.destroyed) return;
    // No environment at all (it might hold a secret): sh and cat are found on the system's default path.
    const relay = spawn('sh', ['-c', RELAY], { stdio: [client, upstream, 'ignore'], env: {}, detached: true });
    this.relay = relay;
    const started = await once(relay, 'spawn').then(
      () => undefined,
      (error: Error) => error,
    );
    // Nothing can have been read since reading stopped (each side waits for the other's answer); were
    // anything read, it would be lost with Node's copies of the connections, so the dump fails instead.
    const buffered = client.readableLength + upstream.readableLength;
    client.removeAllListeners('close');
    upstream.removeAllListeners('close');
    client.destroy();
    upstream.destroy();
    if (started) this.close(new DbflowError(`could not start the relay that carries mariadb-dump's connection (sh): ${started.message}`));
    else if (buffered)
      this.close(
        new DbflowError(
          `the gate read ${buffered} bytes of mariadb-dump's connection after its START TRANSACTION; the dump was stopped rather than lose them`,
        ),
      );
  }

  // Client packets, one by one, until START TRANSACTION has gone through.
  private readPackets(): void {
    while ((this.state === 'setup' || this.state === 'passing') && this.pending.length >= 4) {
      const length = this.pending.readUIntLE(0, 3);
      if (this.pending.length < 4 + length) return;
      const packet = Buffer.from(this.pending.subarray(0, 4 + length));
      this.pending = this.pending.subarray(4 + length);
      // A command starts a new sequence; its first byte says which. (Handshake packets never have sequence 0.)
      const query = packet[3] === 0 && packet[4] === COM_QUERY ? packet.subarray(5).toString('utf8') : undefined;
      if (this.state === 'setup' && query !== undefined && GATED.test(query)) {
        // Held until pass(): the client waits for its answer, so it sends nothing more meanwhile.
        this.held = packet;
        this.state = 'held';
        this.client?.pause();
        this.reached();
        return;
      }
      this.send(packet);
    }
    if (this.state === 'answer' && this.pending.length) {
      const rest = this.pending;
      this.pending = Buffer.alloc(0);
      this.send(rest);
    }
  }

  private send(bytes: Buffer): void {
    const { client, upstream } = this;
    if (!upstream || !client) return;
    if (this.state === 'passing' && START.test(bytes.subarray(5).toString('utf8')) && bytes[3] === 0 && bytes[4] === COM_QUERY)
      this.state = 'answer';
    if (!upstream.write(bytes)) {
      client.pause();
      upstream.once('drain', () => client.resume());
    }
  }
}

// A free loopback port, for a private server (a throwaway instance) to listen on.
import net from 'node:net';

/** A TCP port on 127.0.0.1 that nothing listens on at the time of the call (a server that then fails to bind picks another). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

import net from 'node:net';

/**
 * A TCP relay in front of a server (PostgreSQL, SMTP) that a fault can stall or cut, as a network
 * would: `stall()` stops moving bytes both ways (the sockets stay open, the kernel buffers fill,
 * the peers see silence), `cut()` resets every connection and resets new ones as they arrive,
 * `heal()` ends either. `upstreamPorts()` names the local ports of the relay's connections to the
 * server: PostgreSQL sees them as `client_port`, which tells the stack's backends from anyone else's.
 */
export type TcpRelay = {
  readonly port: number;
  stall(): void;
  cut(): void;
  heal(): void;
  upstreamPorts(): number[];
  close(): Promise<void>;
};

type Pair = { client: net.Socket; upstream: net.Socket };

export async function startTcpRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const pairs = new Set<Pair>();
  let state: 'open' | 'stalled' | 'cut' = 'open';

  const server = net.createServer((client) => {
    if (state === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      socket.on('error', end);
      socket.on('close', end);
    }
    // Forwarded by hand rather than piped: pause() must hold until heal(), and pipe() resumes a
    // paused source on its own when the destination drains.
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    if (state === 'stalled') {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    stall() {
      state = 'stalled';
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    cut() {
      state = 'cut';
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    heal() {
      state = 'open';
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
    },
    upstreamPorts: () => [...pairs].flatMap(({ upstream }) => (upstream.localPort === undefined ? [] : [upstream.localPort])),
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, upstream } of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

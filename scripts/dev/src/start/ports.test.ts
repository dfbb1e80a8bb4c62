import { describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { ephemeralRangeStart, freePort, PORT_RANGE_START, reservedPorts } from './ports.ts';

describe('ports npm start hands out', () => {
  it('reserves every port the services take from the environment, the metrics neighbours included', () => {
    expect(reservedPorts({ HTTP_PORT: '8080', GRPC_PORT: '9090', METRICS_PORT: '9464', INBOX_SMTP_PORT: '1025', INBOX_HTTP_PORT: '8025' }))
      .toEqual([8080, 9090, 9464, 9465, 9466, 1025, 8025]);
    expect(reservedPorts({ METRICS_PORT: '33173' })).toEqual([33173, 33174, 33175]);
    expect(reservedPorts({})).toEqual([]);
  });

  it('never picks a reserved port for a private store', async () => {
    const everyPort = Array.from({ length: 65_535 }, (_, i) => i + 1);
    await expect(freePort(everyPort)).rejects.toThrow(/no free port/);
    const first = await freePort();
    expect(await freePort([first])).not.toBe(first);
  });

  it('picks ports below the ephemeral range, so no outgoing connection can take one while its process restarts', async () => {
    const start = ephemeralRangeStart();
    expect(start).toBeGreaterThan(PORT_RANGE_START + 1_000);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(PORT_RANGE_START);
      // METRICS_PORT + 2 stays below the range too.
      expect(port + 2).toBeLessThan(start);
    }
    // And it is free: something can listen on it.
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[0], '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

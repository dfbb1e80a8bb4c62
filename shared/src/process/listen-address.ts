import { isIPv6 } from 'node:net';

/** `host:port`, with brackets around an IPv6 address (`[::1]:9090`), as gRPC and URLs write it. */
export function hostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * `host:port` for a client on this machine to reach a listener bound to `host` (HOST): loopback
 * for the unspecified addresses (0.0.0.0, ::).
 */
export function dialAddress(host: string, port: number): string {
  return host === '0.0.0.0' || host === '::' ? `127.0.0.1:${port}` : hostPort(host, port);
}

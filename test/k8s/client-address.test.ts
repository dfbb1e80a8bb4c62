// Real client addresses from the internet to the pods on EKS: the controller's load balancer and
// nginx keep them (deploy/eks/ingress-nginx-values.yaml), and the processes trust exactly the one
// hop nginx appends (TRUSTED_PROXIES=1), never the client's own X-Forwarded-For entries.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { parse } from 'yaml';
import { clientAddress } from '@bank/grpc/grpc-server';
import { parseConfig } from '@bank/shared/config/config';

const root = path.resolve(import.meta.dirname, '../..');
const yaml = <T>(file: string): T => parse(readFileSync(path.join(root, file), 'utf8')) as T;

describe('deploy: client addresses', () => {
  it('the processes trust one proxy hop, the ingress', () => {
    const config = yaml<{ data: Record<string, string> }>('deploy/base/config.yaml');
    expect(config.data.TRUSTED_PROXIES).toBe('1');
    expect(config.data).not.toHaveProperty('TRUST_PROXY');
  });

  it('the EKS controller reads the client address from the load balancer (PROXY protocol) and not from the client', () => {
    const values = yaml<{
      controller: { config: Record<string, string>; service: { annotations: Record<string, string>; externalTrafficPolicy: string } };
    }>('deploy/eks/ingress-nginx-values.yaml');
    expect(values.controller.config['use-proxy-protocol']).toBe('true');
    expect(values.controller.config['use-forwarded-headers']).toBe('false');
    expect(values.controller.service.annotations['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol']).toBe('*');
    expect(values.controller.service.externalTrafficPolicy).toBe('Local');
  });
});

describe('TRUSTED_PROXIES', () => {
  it('is 0 by default, and the old TRUST_PROXY is refused with the new name', () => {
    expect(parseConfig({}).TRUSTED_PROXIES).toBe(0);
    expect(() => parseConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY: was replaced by TRUSTED_PROXIES/);
  });

  const call = (forwarded: string | undefined) => {
    const metadata = new grpc.Metadata();
    if (forwarded !== undefined) metadata.set('x-forwarded-for', forwarded);
    return { getPeer: () => 'ipv4:10.0.0.9:5000', metadata };
  };

  it.each([
    [0, '192.0.2.1, 198.51.100.1', 'ipv4:10.0.0.9:5000'],
    [1, '192.0.2.1, 198.51.100.1', '198.51.100.1'],
    [2, '192.0.2.1, 198.51.100.1, 203.0.113.5', '198.51.100.1'],
    [2, '198.51.100.1', '198.51.100.1'],
    [1, undefined, 'ipv4:10.0.0.9:5000'],
  ])('gRPC with %i trusted hops and X-Forwarded-For %s: the client is %s', (hops, forwarded, expected) => {
    expect(clientAddress(call(forwarded), hops)).toBe(expected);
  });
});

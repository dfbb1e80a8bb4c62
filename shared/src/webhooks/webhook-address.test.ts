import { describe, expect, it } from '@jest/globals';
import { InvalidArgument } from '../errors/domain-error.ts';
import { parseWebhookUrl, refusedAddressReason, refusedResolvedAddress } from './webhook-address.ts';

const strict = { requireHttps: false, allowPrivateTargets: false };
const production = { requireHttps: true, allowPrivateTargets: false };
const local = { requireHttps: false, allowPrivateTargets: true };

function refusal(url: string, policy = strict): string {
  try {
    parseWebhookUrl(url, policy);
  } catch (error) {
    if (error instanceof InvalidArgument) return error.fieldViolations.map((v) => `${v.field}: ${v.description}`).join('; ');
    throw error;
  }
  throw new Error(`${url} was accepted`);
}

describe('refusedAddressReason', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['0.0.0.0', 'this network'],
    ['10.0.0.1', 'private network'],
    ['10.255.255.255', 'private network'],
    ['172.16.0.1', 'private network'],
    ['172.31.255.254', 'private network'],
    ['192.168.1.1', 'private network'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['192.0.2.10', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'unique local (private network)'],
    ['fd12:3456::1', 'unique local (private network)'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped (loopback)'],
    ['::ffff:7f00:1', 'IPv4-mapped (loopback)'],
    ['::ffff:10.1.2.3', 'IPv4-mapped (private network)'],
    ['::ffff:8.8.8.8', 'IPv4-mapped (use the IPv4 address)'],
    ['::127.0.0.1', 'not a global unicast address'],
    ['64:ff9b::a00:1', 'not a global unicast address'],
    ['2001::1', 'IETF protocol assignments (Teredo included)'],
    ['2001:db8::1', 'documentation'],
    ['2002:7f00:1::1', '6to4'],
    ['[::1]', 'loopback'],
    ['example.com', 'not an IP address'],
  ])('refuses %s (%s)', (address, reason) => {
    expect(refusedAddressReason(address)).toBe(reason);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '192.169.0.1', '11.0.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e'])(
    'lets the public address %s through',
    (address) => {
      expect(refusedAddressReason(address)).toBeNull();
    },
  );
});

describe('refusedResolvedAddress', () => {
  it('refuses a host when any one of its addresses is refused, and none when private targets are allowed', () => {
    expect(refusedResolvedAddress(['8.8.8.8', '10.0.0.5'], strict)).toEqual({ address: '10.0.0.5', reason: 'private network' });
    expect(refusedResolvedAddress(['8.8.8.8', '2606:4700::1'], strict)).toBeNull();
    expect(refusedResolvedAddress(['127.0.0.1'], local)).toBeNull();
  });
});

describe('parseWebhookUrl', () => {
  it('accepts a public https URL and keeps its path and query', () => {
    expect(parseWebhookUrl('https://hooks.example.com/bank?x=1', production).toString()).toBe('https://hooks.example.com/bank?x=1');
  });

  it('refuses plain http in production, and accepts it elsewhere', () => {
    expect(refusal('http://hooks.example.com/', production)).toBe('url: must be an https:// URL (plain http is refused in production)');
    expect(parseWebhookUrl('http://hooks.example.com/', strict).protocol).toBe('http:');
  });

  it.each([
    ['http://127.0.0.1:8080/hook', 'url: must not point at a loopback address (127.0.0.1)'],
    ['http://2130706433/', 'url: must not point at a loopback address (127.0.0.1)'],
    ['http://0x7f.1/', 'url: must not point at a loopback address (127.0.0.1)'],
    ['http://[::1]/', 'url: must not point at a loopback address (::1)'],
    ['http://[::ffff:127.0.0.1]/', 'url: must not point at a IPv4-mapped (loopback) address (::ffff:7f00:1)'],
    ['http://169.254.169.254/latest/meta-data', 'url: must not point at a link-local address (169.254.169.254)'],
    ['http://0.0.0.0/', 'url: must not point at a this network address (0.0.0.0)'],
    ['http://localhost:3000/', 'url: must not point at this machine (localhost)'],
    ['http://api.localhost./', 'url: must not point at this machine (localhost)'],
    ['ftp://hooks.example.com/', 'url: must be an https:// URL'],
    ['https://user:secret@hooks.example.com/', 'url: must not carry a user name or password'],
    ['https://hooks.example.com/#frag', 'url: must not have a fragment (#...)'],
    ['not a url', 'url: is not a valid absolute URL'],
    ['', 'url: is required'],
    [`https://hooks.example.com/${'a'.repeat(2048)}`, 'url: must be at most 2048 characters'],
  ])('refuses %s', (url, message) => {
    expect(refusal(url)).toBe(message);
  });

  it('accepts loopback and private addresses when private targets are allowed (local development, tests)', () => {
    expect(parseWebhookUrl('http://127.0.0.1:9999/hook', local).host).toBe('127.0.0.1:9999');
    expect(parseWebhookUrl('http://localhost/', local).hostname).toBe('localhost');
  });
});

// Where a webhook may point: the SSRF rules. An endpoint URL is checked when it is registered and
// again, against the addresses its host resolves to, before every delivery (the worker then
// connects to the address it checked, so a DNS answer that changes in between cannot send the
// request somewhere else).
import { isIP } from 'node:net';
import { InvalidArgument } from '../errors/domain-error.ts';

/**
 * Ranges no webhook may reach unless private targets are allowed: this host, private networks,
 * link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast, documentation
 * and benchmarking ranges, and the other special-purpose blocks of the IANA registries. IPv6 is
 * allowed only in global unicast (2000::/3), less the special blocks inside it; IPv4-mapped and
 * IPv4-compatible IPv6 addresses are outside 2000::/3, so `::ffff:127.0.0.1` is refused too.
 */
const REFUSED_V4: readonly (readonly [string, number, string])[] = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private network'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private network'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private network'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];
const GLOBAL_UNICAST_V6: readonly [string, number] = ['2000::', 3];
const REFUSED_V6: readonly (readonly [string, number, string])[] = [
  ['2001::', 23, 'IETF protocol assignments (Teredo included)'],
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, '6to4'],
  ['3fff::', 20, 'documentation'],
];

function v4ToBigInt(address: string): bigint {
  return address.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

/** A textual IPv6 address (with `::`, an embedded dotted quad, a zone) as its 128 bits. */
function v6ToBigInt(address: string): bigint {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const v4 = v4ToBigInt(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headParts : [...headParts, ...Array<string>(8 - headParts.length - tailParts.length).fill('0'), ...tailParts];
  return groups.reduce((n, group) => (n << 16n) | BigInt(parseInt(group, 16)), 0n);
}

const inRange = (value: bigint, bits: number, base: bigint, prefix: number) => value >> BigInt(bits - prefix) === base >> BigInt(bits - prefix);

/**
 * Why `address` (an IPv4 or IPv6 literal) is no place for a webhook, or null when it is a public
 * address. A string that is not an IP address is refused too.
 */
export function refusedAddressReason(address: string): string | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare.replace(/%.*$/, ''));
  if (family === 4) {
    const value = v4ToBigInt(bare);
    if (value === 0xffffffffn) return 'broadcast';
    const hit = REFUSED_V4.find(([base, prefix]) => inRange(value, 32, v4ToBigInt(base), prefix));
    return hit ? hit[2] : null;
  }
  if (family === 6) {
    const value = v6ToBigInt(bare);
    if (value >> 32n === 0xffffn) return `IPv4-mapped (${refusedAddressReason(v4FromBits(value)) ?? 'use the IPv4 address'})`;
    if (!inRange(value, 128, v6ToBigInt(GLOBAL_UNICAST_V6[0]), GLOBAL_UNICAST_V6[1])) {
      if (value === 0n) return 'unspecified';
      if (value === 1n) return 'loopback';
      if (inRange(value, 128, v6ToBigInt('fc00::'), 7)) return 'unique local (private network)';
      if (inRange(value, 128, v6ToBigInt('fe80::'), 10)) return 'link-local';
      if (inRange(value, 128, v6ToBigInt('ff00::'), 8)) return 'multicast';
      return 'not a global unicast address';
    }
    const hit = REFUSED_V6.find(([base, prefix]) => inRange(value, 128, v6ToBigInt(base), prefix));
    return hit ? hit[2] : null;
  }
  return 'not an IP address';
}

function v4FromBits(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** What the URL check needs to know about the deployment. */
export type WebhookTargetPolicy = {
  /** NODE_ENV=production: only https endpoints. */
  requireHttps: boolean;
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS=true: loopback, private and other special addresses allowed (local development, tests). */
  allowPrivateTargets: boolean;
};

const MAX_URL_LENGTH = 2048;

/**
 * The endpoint URL as the service will store and call it, or InvalidArgument (field `url`) for a
 * URL it will not call: not http(s) (not https in production), with credentials or a fragment, an
 * IP literal in a refused range, or `localhost`, unless private targets are allowed. A host name
 * is resolved and checked at every delivery (checkResolvedAddresses).
 * @throws InvalidArgument
 */
export function parseWebhookUrl(input: string, policy: WebhookTargetPolicy): URL {
  const refuse = (description: string) => InvalidArgument.field('url', description);
  const text = input.trim();
  if (text === '') throw refuse('is required');
  if (text.length > MAX_URL_LENGTH) throw refuse(`must be at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refuse('is not a valid absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('must be an https:// URL');
  if (policy.requireHttps && url.protocol !== 'https:') throw refuse('must be an https:// URL (plain http is refused in production)');
  if (url.username !== '' || url.password !== '') throw refuse('must not carry a user name or password');
  if (url.hash !== '') throw refuse('must not have a fragment (#...)');
  if (url.hostname === '') throw refuse('must name a host');
  if (!policy.allowPrivateTargets) {
    const host = url.hostname.replace(/\.$/, '').toLowerCase();
    if (host === 'localhost' || host.endsWith('.localhost')) throw refuse('must not point at this machine (localhost)');
    const literal = host.startsWith('[') ? host.slice(1, -1) : host;
    if (isIP(literal) !== 0) {
      const reason = refusedAddressReason(literal);
      if (reason) throw refuse(`must not point at a ${reason} address (${literal})`);
    }
  }
  return url;
}

/**
 * The first refused address among those a host resolved to, with why, or null when every one is
 * public (or private targets are allowed). A delivery refuses the host if any of its addresses
 * is refused, so a name with one public and one private answer cannot be aimed inside.
 */
export function refusedResolvedAddress(addresses: readonly string[], policy: Pick<WebhookTargetPolicy, 'allowPrivateTargets'>): { address: string; reason: string } | null {
  if (policy.allowPrivateTargets) return null;
  for (const address of addresses) {
    const reason = refusedAddressReason(address);
    if (reason) return { address, reason };
  }
  return null;
}

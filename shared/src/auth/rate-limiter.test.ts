import { describe, expect, it } from '@jest/globals';
import { clientAddressKey } from './rate-limiter.ts';

describe('clientAddressKey', () => {
  it('drops the source port and the gRPC peer prefix, unmaps IPv4 in IPv6, groups IPv6 per /64', () => {
    expect(clientAddressKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientAddressKey('ipv4:10.1.2.3:50123')).toBe('10.1.2.3');
    expect(clientAddressKey('10.1.2.3:8080')).toBe('10.1.2.3');
    expect(clientAddressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientAddressKey('ipv6:[::ffff:10.1.2.3]:50123')).toBe('10.1.2.3');
    expect(clientAddressKey('ipv6:[2001:db8:aa:bb:1:2:3:4]:443')).toBe('2001:db8:aa:bb::/64');
    expect(clientAddressKey('2001:DB8:AA:BB::99')).toBe('2001:db8:aa:bb::/64');
    expect(clientAddressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientAddressKey('::1')).toBe('0:0:0:0::/64');
    expect(clientAddressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientAddressKey('64:ff9b::10.1.2.3')).toBe('64:ff9b:0:0::/64');
    expect(clientAddressKey('unix:/tmp/socket')).toBe('unix:/tmp/socket');
  });
});

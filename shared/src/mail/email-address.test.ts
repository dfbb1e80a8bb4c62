import { describe, expect, it } from '@jest/globals';
import { isPlainEmailAddress } from './email-address.ts';

describe('isPlainEmailAddress', () => {
  it.each([
    'ada@example.test',
    'Ada.Lovelace+bank@mail.example.co.uk',
    "o'brien_42@example.test",
    'x@xn--bcher-kva.example',
    `${'l'.repeat(64)}@example.test`,
  ])('accepts the plain address %s', (address) => {
    expect(isPlainEmailAddress(address)).toBe(true);
  });

  it.each([
    ['a display name', '"x"<a@evil.test>'],
    ['a display name with a space', 'Ada <ada@example.test>'],
    ['a list', 'a,b@evil.test'],
    ['a list with a space', 'a@example.test, b@evil.test'],
    ['a semicolon list', 'a@example.test;b@evil.test'],
    ['a quoted local part', '"a b"@example.test'],
    ['two @', 'a@b@example.test'],
    ['a comment', 'a(comment)@example.test'],
    ['an IP literal', 'a@[127.0.0.1]'],
    ['a route', '@relay.test:a@example.test'],
    ['a dot at the start', '.a@example.test'],
    ['two dots in a row', 'a..b@example.test'],
    ['a domain without a dot', 'a@localhost'],
    ['a numeric top label', 'a@example.123'],
    ['a label starting with a hyphen', 'a@-example.test'],
    ['an empty label', 'a@example..test'],
    ['a space', 'a b@example.test'],
    ['a line break', 'a@example.test\nBcc: b@evil.test'],
    ['non-ASCII', 'ä@example.test'],
    ['a local part over 64', `${'l'.repeat(65)}@example.test`],
    ['over 254 characters', `a@${`${'d'.repeat(62)}.`.repeat(4)}test`],
    ['nothing', ''],
    ['no local part', '@example.test'],
  ])('refuses %s: %s', (_what, address) => {
    expect(isPlainEmailAddress(address)).toBe(false);
  });

  it('refuses what is not a string', () => {
    expect(isPlainEmailAddress(42)).toBe(false);
    expect(isPlainEmailAddress(undefined)).toBe(false);
  });
});

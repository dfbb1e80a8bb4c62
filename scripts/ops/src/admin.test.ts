import { describe, expect, it } from '@jest/globals';
import { ADMIN_EXIT, operatorActor, parseAdminArgs, runAdmin } from './admin.ts';

describe('admin arguments', () => {
  it('reads a command, a username, the banker role and an optional reason', () => {
    expect(parseAdminArgs(['grant-role', 'alice', 'banker'])).toEqual({ command: 'grant-role', username: 'alice', reason: undefined });
    expect(parseAdminArgs(['revoke-role', 'alice', 'banker', '--reason', 'left the team'])).toEqual({ command: 'revoke-role', username: 'alice', reason: 'left the team' });
  });

  it('refuses other commands, roles, extra arguments, unknown options and an empty reason', () => {
    for (const argv of [[], ['grant-role'], ['grant-role', 'alice'], ['grant-role', 'alice', 'depositor'], ['make', 'alice', 'banker'], ['grant-role', 'alice', 'banker', 'x'], ['grant-role', 'alice', 'banker', '--yes'], ['grant-role', 'alice', 'banker', '--reason', ' ']]) {
      expect(() => parseAdminArgs(argv)).toThrow();
    }
  });

  it('answers bad usage with exit code 2 and the usage line, before reading any configuration', async () => {
    const errors: string[] = [];
    const code = await runAdmin(['grant-role', 'alice', 'admin'], { log: () => undefined, error: (line) => errors.push(line) }, { DATABASE_URL: 'not a url' });
    expect(code).toBe(ADMIN_EXIT.usage);
    expect(errors).toEqual(['admin: unknown role "admin" (only banker can be granted or revoked)', expect.stringContaining('usage: npm run admin --')]);
  });
});

describe('the operator named in the audit trail', () => {
  it('is ADMIN_ACTOR when set, otherwise the OS user', () => {
    expect(operatorActor({ ADMIN_ACTOR: 'jane.doe' })).toBe('operator:jane.doe');
    expect(operatorActor({})).toMatch(/^operator:\S+$/);
    expect(operatorActor({ ADMIN_ACTOR: '  ' })).toBe(operatorActor({}));
  });
});

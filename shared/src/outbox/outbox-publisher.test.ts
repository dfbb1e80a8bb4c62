import { describe, expect, it } from '@jest/globals';
import { errorSummary } from './outbox-publisher.ts';

describe('errorSummary', () => {
  it('masks email addresses that SMTP errors quote', () => {
    const summary = errorSummary(new Error("Can't send mail - all recipients were rejected: 550 5.1.1 <alice.smith@example.com>: unknown"));
    expect(summary.message).toBe("Can't send mail - all recipients were rejected: 550 5.1.1 <a***@example.com>: unknown");
    expect(errorSummary('plain bob@example.org').message).toBe('plain b***@example.org');
  });
});

import { DomainError } from '../errors/domain-error.ts';

export type PasswordResetLinkProblem = 'not_found' | 'used' | 'expired';

/**
 * A password-reset link that does not exist (or whose secret is wrong), was used, or expired.
 * NOT_FOUND for the first (404 / NOT_FOUND), FAILED_PRECONDITION for the others (409).
 */
export class PasswordResetLinkInvalid extends DomainError {
  readonly reason: PasswordResetLinkProblem;
  constructor(reason: PasswordResetLinkProblem) {
    const messages = {
      not_found: 'this password reset link is not valid',
      used: 'this password reset link was already used; ask for a new one',
      expired: 'this password reset link has expired; ask for a new one',
    } as const;
    super(reason === 'not_found' ? 'NOT_FOUND' : 'FAILED_PRECONDITION', messages[reason]);
    this.reason = reason;
  }
}

import type { AttemptRecord, Final, Protocol } from './bank-client.ts';

export type MoneyKind = 'transfer' | 'deposit' | 'withdrawal' | 'hold' | 'capture' | 'void';

/** One money request as its client saw it in the end: the key, and what the bank finally said. */
export type MoneyOp = {
  kind: MoneyKind;
  protocol: Protocol;
  /** The actor, who owns the idempotency key. */
  username: string;
  key: string;
  outcome: Final<unknown>['status'];
  /** Of an acknowledged request: the transfer it answered with (a capture or a void: the hold). */
  transferId?: bigint;
  /** Of a refusal: the bank's code. */
  refusal?: string;
  /** Of a request given up: the code of its last answer (OVERLOADED: shed by load shedding). */
  lastCode?: string;
  /**
   * Sent to be refused (an overdraft by a user kept at a zero balance, the capture of a voided
   * hold): acknowledged, it moved money the ledger had to refuse.
   */
  mustBeRefused?: boolean;
  attempts: number;
  /** Its first attempt had a deadline of a few milliseconds: the answer is lost, the server may commit. */
  impatient: boolean;
  /** Acknowledged as a replay: an earlier attempt had committed it. */
  replayed?: boolean;
};

/** A sign-up or login: each one acknowledged asked for an email. */
export type IdentityOp = {
  kind: 'sign-up' | 'login';
  protocol: Protocol;
  username: string;
  email: string;
  outcome: Final<unknown>['status'];
  /** Of an acknowledged login: the pending session the login email names. */
  sessionId?: string;
  refusal?: string;
  attempts: number;
};

/** Everything the clients were told, for the checks after the run. */
export class Journal {
  readonly money: MoneyOp[] = [];
  readonly identity: IdentityOp[] = [];
  readonly attempts: AttemptRecord[] = [];
  /** Accounts no request may move money from or to: the poor user's, whose every request is refused. */
  readonly untouchableAccounts: bigint[] = [];
  /** Failures of the suite's own code (not answers of the bank), reported as they are. */
  readonly errors: string[] = [];
  readonly record = (entry: AttemptRecord): void => {
    this.attempts.push(entry);
  };

  /** Attempts between two instants, by kind. */
  countsBetween(from: number, to: number): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const a of this.attempts) if (a.at >= from && a.at <= to) counts[a.kind] = (counts[a.kind] ?? 0) + 1;
    return counts;
  }
}

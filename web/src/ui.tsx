// Form pieces with real labels, announced errors and one idempotency key per submission.
import { useCallback, useId, useRef, useState, type FormEvent, type InputHTMLAttributes, type ReactNode } from 'react';
import { RestError } from '@bank/proto/bank/v1/rest_client';
import { formatAmount } from './money.ts';

export function Field({ label, hint, error, ...input }: { label: string; hint?: string; error?: string | undefined } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  // A password field can be shown while typing (ASVS 2.1.12): a toggle button beside it, pressed
  // while the text is visible. Nothing else changes: paste and password managers keep working.
  const [shown, setShown] = useState(false);
  const revealable = input.type === 'password';
  const field = (
    <input
      id={id}
      aria-describedby={[hintId, errorId].filter(Boolean).join(' ') || undefined}
      aria-invalid={error ? true : undefined}
      {...input}
      type={revealable && shown ? 'text' : input.type}
    />
  );
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
      {revealable ? (
        <div className="field-row">
          {field}
          <button type="button" className="secondary reveal" aria-controls={id} aria-pressed={shown} onClick={() => setShown((value) => !value)}>
            Show password
          </button>
        </div>
      ) : (
        field
      )}
      {error && (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      )}
    </div>
  );
}

/** A status line that screen readers announce: polite for news, assertive (role=alert) for errors. */
export function Notice({ kind, children }: { kind: 'error' | 'ok'; children: ReactNode }) {
  if (kind === 'error') {
    return (
      <p className="notice notice-error" role="alert">
        {children}
      </p>
    );
  }
  return (
    <p className="notice notice-ok" role="status">
      {children}
    </p>
  );
}

/**
 * The outcome of a form: live regions that are always in the page (empty until something
 * happens), so screen readers announce what is written into them: errors assertively
 * (role=alert), results politely (role=status), with `children` (a link onwards) after a result.
 */
export function Outcome({ error, done, children }: { error: string | null; done?: string | null; children?: ReactNode }) {
  return (
    <>
      <p className="notice notice-error" role="alert">
        {error ?? ''}
      </p>
      {done !== undefined && (
        <p className="notice notice-ok" role="status">
          {done ?? ''}
          {done && children ? <> {children}</> : null}
        </p>
      )}
    </>
  );
}

export function Amount({ minor, currency, className }: { minor: bigint; currency: string; className?: string }) {
  return <span className={className ?? 'amount'}>{formatAmount(minor, currency)}</span>;
}

/** A refusal of the API in words a person understands (problem+json code, facts it carries). */
export function describeError(error: unknown, currency?: string): string {
  if (!(error instanceof RestError)) return 'The bank could not be reached. Check your connection and try again.';
  const money = (name: string) => {
    const value = error.extensions[name];
    return value !== undefined && currency && /^-?\d+$/.test(value) ? formatAmount(BigInt(value), currency) : undefined;
  };
  switch (error.code) {
    case 'INSUFFICIENT_FUNDS':
      return 'Not enough money: the available balance of this account is lower than the amount.';
    case 'LIMIT_EXCEEDED': {
      const remaining = money('remaining');
      const limit = money('limit');
      return `That is over the limit${limit ? ` of ${limit}` : ''}${remaining ? `: at most ${remaining} more is allowed now` : ''}.`;
    }
    case 'UNAUTHENTICATED':
      return 'That did not work: the details are wrong, or the code or link is no longer valid.';
    case 'RATE_LIMITED':
      return 'Too many attempts. Wait a little and try again.';
    case 'ACCOUNT_NOT_FOUND':
      return 'There is no such account (or it is not yours).';
    case 'ACCOUNT_FROZEN':
      return 'This account is frozen: no money can move in or out of it. Contact the bank.';
    case 'ACCOUNT_CLOSED':
      return 'This account is closed.';
    case 'CURRENCY_MISMATCH':
      return 'Both accounts must be in the same currency.';
    case 'SAME_ACCOUNT':
      return 'Choose another account to send to.';
    case 'ACCOUNT_ALREADY_EXISTS':
      return 'You already have an open account in this currency.';
    case 'USERNAME_TAKEN':
      return 'That username is taken. Choose another.';
    case 'EMAIL_TAKEN':
      return 'That email address is already used by another account.';
    case 'EMAIL_NOT_VERIFIED':
      return 'Verify your email address first: open the link in the email we sent you.';
    case 'HOLD_EXPIRED':
      return 'This hold has expired; the money was released.';
    case 'TRANSFER_NOT_PENDING':
      return 'This transfer is no longer on hold.';
    case 'OVERLOADED':
    case 'UNAVAILABLE':
      return 'The bank is busy right now. Try again in a moment: nothing was done twice.';
    default: {
      const fields = error.errors.map((e) => `${e.field.replace(/_/g, ' ')} ${e.description}`).join('; ');
      return fields ? `Please check: ${fields}.` : error.detail || `The bank refused this (${error.code}).`;
    }
  }
}

/**
 * A form's submission state. `run` ignores a second submission while one is in flight (a double
 * click) and hands every try of one submission the same idempotency key, so a retry after a lost
 * answer is answered from the first result instead of moving money twice. The key is new once the
 * submission succeeded or the person changed the form (`changed`).
 */
export function useSubmission() {
  const busyRef = useRef(false);
  const keyRef = useRef<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const changed = useCallback(() => {
    keyRef.current = null;
  }, []);
  const run = useCallback(async (work: (idempotencyKey: string) => Promise<string | null>, describe: (error: unknown) => string = (e) => describeError(e)) => {
    if (busyRef.current) return;
    busyRef.current = true;
    keyRef.current ??= crypto.randomUUID();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const message = await work(keyRef.current);
      keyRef.current = null;
      setDone(message);
    } catch (e) {
      // A refusal (4xx but 408/429) is final for this key; anything else may be retried with it.
      if (e instanceof RestError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) keyRef.current = null;
      setError(describe(e));
    } finally {
      busyRef.current = false;
      setBusy(false);
    }
  }, []);
  return { busy, error, done, run, changed, setError };
}

/** A <form> that never reloads the page. */
export function Form({ onSubmit, children, label }: { onSubmit: () => void | Promise<void>; children: ReactNode; label: string }) {
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void onSubmit();
  };
  return (
    <form onSubmit={submit} aria-label={label} noValidate>
      {children}
    </form>
  );
}

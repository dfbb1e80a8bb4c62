// The signed-in pages about money: the accounts, one account (balance, add funds, send, hold,
// withdraw, statement, history with infinite scroll) and one transfer (capture or void a hold).
import { useCallback, useEffect, useRef, useState } from 'react';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { TransferKind, TransferStatus, type Account, type Entry, type Transfer } from '@bank/proto/bank/v1/types_pb';
import { CURRENCIES, parseAmount } from '../money.ts';
import { Link, usePageTitle } from '../router.tsx';
import { withApi } from '../session.ts';
import { Amount, Field, Form, Notice, Outcome, describeError, useSubmission } from '../ui.tsx';

const when = (t: Timestamp | undefined) => (t ? timestampDate(t).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '');

/** The account list and balances, re-read on demand. */
function useAccounts() {
  const [accounts, setAccounts] = useState<Account[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      const answer = await withApi((api) => api.account.listAccounts({}));
      setAccounts(answer.accounts);
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  }, []);
  useEffect(() => void reload(), [reload]);
  return { accounts, error, reload };
}

export function AccountsPage() {
  usePageTitle('Your accounts');
  const { accounts, error, reload } = useAccounts();
  const [currency, setCurrency] = useState('USD');
  const submission = useSubmission();
  const open = () =>
    submission.run(async () => {
      const account = await withApi((api) => api.account.openAccount({ currency }));
      await reload();
      return `Your ${account.currency} account No. ${account.id} is open.`;
    });
  return (
    <>
      <h1 tabIndex={-1}>Your accounts</h1>
      <Outcome error={error} />
      {accounts === null ? (
        <p>Loading…</p>
      ) : accounts.length === 0 ? (
        <p>You have no account yet: open one below.</p>
      ) : (
        <ul className="cards">
          {accounts.map((a) => (
            <li key={a.id.toString()} className="card">
              <h2>
                <Link to={`/app/accounts/${a.id}`}>
                  {a.currency} account No. {a.id.toString()}
                </Link>
              </h2>
              <dl className="facts">
                <dt>Balance</dt>
                <dd>
                  <Amount minor={a.balance} currency={a.currency} />
                </dd>
                <dt>Available</dt>
                <dd>
                  <Amount minor={a.availableBalance} currency={a.currency} />
                </dd>
              </dl>
            </li>
          ))}
        </ul>
      )}
      <h2>Open an account</h2>
      <Form onSubmit={open} label="Open an account">
        <div className="field">
          <label htmlFor="open-currency">Currency</label>
          <select id="open-currency" value={currency} onChange={(e) => setCurrency(e.target.value)}>
            {CURRENCIES.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </div>
        <button type="submit" disabled={submission.busy}>
          Open account
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done} />
    </>
  );
}

/** One history line: the entry and its transfer (for memo, reference and counterparty). */
type Line = { entry: Entry; transfer: Transfer | undefined };

function counterparty(transfer: Transfer | undefined, accountId: bigint): string {
  if (!transfer) return '';
  switch (transfer.kind) {
    case TransferKind.DEPOSIT:
      return 'Deposit';
    case TransferKind.WITHDRAWAL:
      return `Withdrawal to ${transfer.destination}`;
    default: {
      const other = transfer.fromAccountId === accountId ? transfer.toAccountId : transfer.fromAccountId;
      const direction = transfer.fromAccountId === accountId ? 'To' : 'From';
      const what = transfer.kind === TransferKind.REVERSAL ? 'Reversal' : transfer.kind === TransferKind.REFUND ? 'Refund' : direction;
      return `${what} account No. ${other}`;
    }
  }
}

const PAGE_SIZE = 20;

/** The account's entries, newest first, a page at a time as the list's end scrolls into view. */
function History({ account, version }: { account: Account; version: number }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [token, setToken] = useState<string | null>('');
  const [error, setError] = useState<string | null>(null);
  const loading = useRef(false);
  const sentinel = useRef<HTMLDivElement>(null);

  const loadMore = useCallback(
    async (pageToken: string, replace: boolean) => {
      if (loading.current) return;
      loading.current = true;
      try {
        const page = await withApi((api) => api.account.listEntries({ accountId: account.id, pageSize: PAGE_SIZE, pageToken }));
        const ids = [...new Set(page.entries.map((e) => e.transferId))];
        const transfers = new Map((await Promise.all(ids.map((id) => withApi((api) => api.transfer.getTransfer({ transferId: id }))))).map((t) => [t.id, t]));
        const fresh = page.entries.map((entry) => ({ entry, transfer: transfers.get(entry.transferId) }));
        setLines((old) => (replace ? fresh : [...old, ...fresh]));
        setToken(page.nextPageToken || null);
        setError(null);
      } catch (e) {
        setError(describeError(e));
      } finally {
        loading.current = false;
      }
    },
    [account.id],
  );

  useEffect(() => {
    void loadMore('', true);
  }, [loadMore, version]);

  useEffect(() => {
    const node = sentinel.current;
    if (!node || token === null || token === '') return;
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((s) => s.isIntersecting)) void loadMore(token, false);
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, [token, loadMore]);

  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      <Outcome error={error} />
      {lines.length === 0 && !error && <p>No movements yet.</p>}
      <ol className="history" aria-label="Movements, newest first">
        {lines.map(({ entry, transfer }) => (
          <li key={entry.id.toString()} className="history-line">
            <div className="history-main">
              <Link to={`/app/transfers/${entry.transferId}`} className="history-who">
                {counterparty(transfer, account.id) || `Transfer ${entry.transferId}`}
              </Link>
              <Amount minor={entry.amount} currency={account.currency} className={entry.amount < 0n ? 'amount out' : 'amount in'} />
            </div>
            <div className="history-more">
              <span>{when(entry.createdAt)}</span>
              {transfer?.memo && <span>{transfer.memo}</span>}
              {transfer?.reference && <span>Ref. {transfer.reference}</span>}
              <span>
                Balance after <Amount minor={entry.balanceAfter} currency={account.currency} />
              </span>
            </div>
          </li>
        ))}
      </ol>
      {token && (
        <div ref={sentinel}>
          <button type="button" className="secondary" onClick={() => void loadMore(token, false)}>
            Show older movements
          </button>
        </div>
      )}
      {token === null && lines.length > 0 && <p className="hint">That is the whole history.</p>}
    </section>
  );
}

/** An amount field of a money form, read in the account's currency. */
function useAmount(currency: string) {
  const [text, setText] = useState('');
  const parsed = parseAmount(text, currency);
  return { text, setText, parsed };
}

function AddFunds({ account, onDone }: { account: Account; onDone: () => Promise<void> }) {
  const amount = useAmount(account.currency);
  const [fieldError, setFieldError] = useState<string>();
  const submission = useSubmission();
  const submit = () => {
    if (!amount.parsed.ok) return setFieldError(amount.parsed.reason);
    setFieldError(undefined);
    const minor = amount.parsed.minor;
    return submission.run(
      async (idempotencyKey) => {
        await withApi((api) => api.account.deposit({ accountId: account.id, amount: minor, idempotencyKey }));
        amount.setText('');
        await onDone();
        return 'The money was added.';
      },
      (e) => describeError(e, account.currency),
    );
  };
  return (
    <section aria-labelledby="add-heading" className="panel">
      <h2 id="add-heading">Add funds</h2>
      <Form onSubmit={submit} label="Add funds">
        <Field label={`Amount to add (${account.currency})`} inputMode="decimal" autoComplete="off" value={amount.text} error={fieldError} onChange={(e) => (amount.setText(e.target.value), submission.changed())} />
        <button type="submit" disabled={submission.busy}>
          Add funds
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done} />
    </section>
  );
}

function SendMoney({ account, onDone }: { account: Account; onDone: () => Promise<void> }) {
  const amount = useAmount(account.currency);
  const [to, setTo] = useState('');
  const [memo, setMemo] = useState('');
  const [reference, setReference] = useState('');
  const [hold, setHold] = useState(false);
  const [errors, setErrors] = useState<{ to?: string; amount?: string }>({});
  const [result, setResult] = useState<Transfer | null>(null);
  const submission = useSubmission();
  const change = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    submission.changed();
  };
  const submit = () => {
    const toValid = /^[1-9][0-9]{0,18}$/.test(to.trim());
    const next = { ...(toValid ? {} : { to: 'Enter the account number to send to, in digits.' }), ...(amount.parsed.ok ? {} : { amount: amount.parsed.reason }) };
    setErrors(next);
    if (!toValid || !amount.parsed.ok) return;
    const minor = amount.parsed.minor;
    return submission.run(
      async (idempotencyKey) => {
        const answer = await withApi((api) =>
          api.transfer.createTransfer({
            fromAccountId: account.id,
            toAccountId: BigInt(to.trim()),
            amount: minor,
            currency: account.currency,
            idempotencyKey,
            memo: memo.trim(),
            reference: reference.trim(),
            ...(hold ? { hold: { ttlSeconds: 7 * 24 * 3600 } } : {}),
          }),
        );
        setResult(answer.transfer ?? null);
        amount.setText('');
        await onDone();
        return hold ? 'The money is on hold. Capture or void the hold from its page.' : 'The money was sent.';
      },
      (e) => describeError(e, account.currency),
    );
  };
  return (
    <section aria-labelledby="send-heading" className="panel">
      <h2 id="send-heading">Send money</h2>
      <Form onSubmit={submit} label="Send money">
        <Field label="To account number" inputMode="numeric" autoComplete="off" value={to} error={errors.to} onChange={(e) => change(setTo)(e.target.value)} />
        <Field label={`Amount (${account.currency})`} inputMode="decimal" autoComplete="off" value={amount.text} error={errors.amount} onChange={(e) => change(amount.setText)(e.target.value)} />
        <Field label="Memo (optional)" maxLength={140} value={memo} onChange={(e) => change(setMemo)(e.target.value)} />
        <Field label="Reference (optional)" maxLength={64} value={reference} onChange={(e) => change(setReference)(e.target.value)} />
        <div className="check">
          <input id="send-hold" type="checkbox" checked={hold} onChange={(e) => change(setHold)(e.target.checked)} />
          <label htmlFor="send-hold">Only hold the money for now (capture or void it within 7 days)</label>
        </div>
        <button type="submit" disabled={submission.busy}>
          {hold ? 'Hold money' : 'Send money'}
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done}>
        {result && <Link to={`/app/transfers/${result.id}`}>See transfer No. {result.id.toString()}</Link>}
      </Outcome>
    </section>
  );
}

function Withdraw({ account, onDone }: { account: Account; onDone: () => Promise<void> }) {
  const amount = useAmount(account.currency);
  const [destination, setDestination] = useState('');
  const [errors, setErrors] = useState<{ destination?: string; amount?: string }>({});
  const submission = useSubmission();
  const submit = () => {
    const destinationValid = /^[!-~](?:[ -~]{0,62}[!-~])?$/.test(destination.trim());
    setErrors({ ...(destinationValid ? {} : { destination: 'Enter where the money goes, like an IBAN (up to 64 characters).' }), ...(amount.parsed.ok ? {} : { amount: amount.parsed.reason }) });
    if (!destinationValid || !amount.parsed.ok) return;
    const minor = amount.parsed.minor;
    return submission.run(
      async (idempotencyKey) => {
        await withApi((api) => api.account.withdraw({ accountId: account.id, amount: minor, destination: destination.trim(), idempotencyKey }));
        amount.setText('');
        await onDone();
        return 'The withdrawal is on its way.';
      },
      (e) => describeError(e, account.currency),
    );
  };
  return (
    <section aria-labelledby="withdraw-heading" className="panel">
      <h2 id="withdraw-heading">Withdraw</h2>
      <Form onSubmit={submit} label="Withdraw">
        <Field label={`Amount (${account.currency})`} inputMode="decimal" autoComplete="off" value={amount.text} error={errors.amount} onChange={(e) => (amount.setText(e.target.value), submission.changed())} />
        <Field label="Destination (IBAN or account elsewhere)" autoComplete="off" value={destination} error={errors.destination} onChange={(e) => (setDestination(e.target.value), submission.changed())} />
        <button type="submit" disabled={submission.busy}>
          Withdraw
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done} />
    </section>
  );
}

function Statement({ account }: { account: Account }) {
  const submission = useSubmission();
  const download = (format: 'csv' | 'pdf') =>
    submission.run(async () => {
      const file = await withApi((api) => api.account.getStatement({ accountId: account.id, format }));
      const url = URL.createObjectURL(new Blob([file.data as Uint8Array<ArrayBuffer>], { type: file.contentType }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `statement-${account.id}.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      return `Your ${format.toUpperCase()} statement is downloaded.`;
    });
  return (
    <section aria-labelledby="statement-heading" className="panel">
      <h2 id="statement-heading">Statement</h2>
      <p>This month so far: opening and closing balance, every movement, the holds still pending.</p>
      <div className="buttons">
        <button type="button" className="secondary" disabled={submission.busy} onClick={() => void download('csv')}>
          Download CSV
        </button>
        <button type="button" className="secondary" disabled={submission.busy} onClick={() => void download('pdf')}>
          Download PDF
        </button>
      </div>
      <Outcome error={submission.error} done={submission.done} />
    </section>
  );
}

export function AccountPage({ accountId }: { accountId: string }) {
  const [account, setAccount] = useState<Account | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  usePageTitle(account ? `${account.currency} account No. ${account.id}` : 'Account');
  const reload = useCallback(async () => {
    try {
      setAccount(await withApi((api) => api.account.getAccount({ accountId: BigInt(accountId) })));
      setVersion((v) => v + 1);
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  }, [accountId]);
  useEffect(() => void reload(), [reload]);
  if (!account) {
    return (
      <>
        <h1 tabIndex={-1}>Account</h1>
        {error ? <Notice kind="error">{error}</Notice> : <p>Loading…</p>}
      </>
    );
  }
  return (
    <>
      <p>
        <Link to="/app/">← All accounts</Link>
      </p>
      <h1 tabIndex={-1}>
        {account.currency} account No. {account.id.toString()}
      </h1>
      <dl className="facts balances" aria-live="polite">
        <dt>Balance</dt>
        <dd>
          <Amount minor={account.balance} currency={account.currency} className="amount big" />
        </dd>
        <dt>Available</dt>
        <dd>
          <Amount minor={account.availableBalance} currency={account.currency} />
        </dd>
      </dl>
      <Outcome error={error} />
      <div className="panels">
        <SendMoney account={account} onDone={reload} />
        <AddFunds account={account} onDone={reload} />
        <Withdraw account={account} onDone={reload} />
        <Statement account={account} />
      </div>
      <History account={account} version={version} />
    </>
  );
}

const STATUS_WORDS: Record<TransferStatus, string> = {
  [TransferStatus.UNSPECIFIED]: 'Unknown',
  [TransferStatus.POSTED]: 'Done',
  [TransferStatus.PENDING]: 'On hold',
  [TransferStatus.VOIDED]: 'Hold voided',
  [TransferStatus.EXPIRED]: 'Hold expired',
};
const KIND_WORDS: Record<TransferKind, string> = {
  [TransferKind.UNSPECIFIED]: 'Transfer',
  [TransferKind.TRANSFER]: 'Transfer',
  [TransferKind.DEPOSIT]: 'Deposit',
  [TransferKind.WITHDRAWAL]: 'Withdrawal',
  [TransferKind.REVERSAL]: 'Reversal',
  [TransferKind.REFUND]: 'Refund',
};

export function TransferPage({ transferId }: { transferId: string }) {
  const [transfer, setTransfer] = useState<Transfer | null>(null);
  const [mine, setMine] = useState<Set<bigint>>(new Set());
  const [error, setError] = useState<string | null>(null);
  const [captureText, setCaptureText] = useState('');
  const [captureError, setCaptureError] = useState<string>();
  const capture = useSubmission();
  const voiding = useSubmission();
  usePageTitle(`Transfer No. ${transferId}`);
  const reload = useCallback(async () => {
    try {
      const [t, accounts] = await Promise.all([
        withApi((api) => api.transfer.getTransfer({ transferId: BigInt(transferId) })),
        withApi((api) => api.account.listAccounts({})),
      ]);
      setTransfer(t);
      setMine(new Set(accounts.accounts.map((a) => a.id)));
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  }, [transferId]);
  useEffect(() => void reload(), [reload]);

  if (!transfer) {
    return (
      <>
        <h1 tabIndex={-1}>Transfer No. {transferId}</h1>
        {error ? <Notice kind="error">{error}</Notice> : <p>Loading…</p>}
      </>
    );
  }
  const canSettle = transfer.status === TransferStatus.PENDING && mine.has(transfer.fromAccountId);
  const doCapture = () => {
    let amount: bigint | undefined;
    if (captureText.trim() !== '') {
      const parsed = parseAmount(captureText, transfer.currency);
      if (!parsed.ok) return setCaptureError(parsed.reason);
      amount = parsed.minor;
    }
    setCaptureError(undefined);
    return capture.run(
      async (idempotencyKey) => {
        await withApi((api) => api.transfer.captureTransfer({ transferId: transfer.id, idempotencyKey, ...(amount !== undefined ? { amount } : {}) }));
        await reload();
        return 'The hold is captured: the money has moved.';
      },
      (e) => describeError(e, transfer.currency),
    );
  };
  const doVoid = () =>
    voiding.run(async (idempotencyKey) => {
      await withApi((api) => api.transfer.voidTransfer({ transferId: transfer.id, idempotencyKey }));
      await reload();
      return 'The hold is voided: the money is available again.';
    });
  const back = mine.has(transfer.fromAccountId) ? transfer.fromAccountId : mine.has(transfer.toAccountId) ? transfer.toAccountId : undefined;
  return (
    <>
      {back !== undefined && (
        <p>
          <Link to={`/app/accounts/${back}`}>← Account No. {back.toString()}</Link>
        </p>
      )}
      <h1 tabIndex={-1}>
        {KIND_WORDS[transfer.kind]} No. {transfer.id.toString()}
      </h1>
      <dl className="facts">
        <dt>Amount</dt>
        <dd>
          <Amount minor={transfer.amount} currency={transfer.currency} />
        </dd>
        <dt>Status</dt>
        <dd>{STATUS_WORDS[transfer.status]}</dd>
        {transfer.capturedAmount !== undefined && (
          <>
            <dt>Captured</dt>
            <dd>
              <Amount minor={transfer.capturedAmount} currency={transfer.currency} />
            </dd>
          </>
        )}
        <dt>From</dt>
        <dd>{transfer.kind === TransferKind.DEPOSIT ? 'The bank (deposit)' : `Account No. ${transfer.fromAccountId}`}</dd>
        <dt>To</dt>
        <dd>{transfer.kind === TransferKind.WITHDRAWAL ? transfer.destination : `Account No. ${transfer.toAccountId}`}</dd>
        <dt>When</dt>
        <dd>{when(transfer.createdAt)}</dd>
        {transfer.status === TransferStatus.PENDING && (
          <>
            <dt>Hold ends</dt>
            <dd>{when(transfer.expiresAt)}</dd>
          </>
        )}
        {transfer.memo && (
          <>
            <dt>Memo</dt>
            <dd>{transfer.memo}</dd>
          </>
        )}
        {transfer.reference && (
          <>
            <dt>Reference</dt>
            <dd>{transfer.reference}</dd>
          </>
        )}
        <dt>By</dt>
        <dd>{transfer.initiatedBy}</dd>
      </dl>
      {canSettle && (
        <section aria-labelledby="settle-heading" className="panel">
          <h2 id="settle-heading">Settle this hold</h2>
          <Form onSubmit={doCapture} label="Capture the hold">
            <Field
              label={`Amount to capture (${transfer.currency})`}
              hint="Leave empty to capture all of it"
              inputMode="decimal"
              autoComplete="off"
              value={captureText}
              error={captureError}
              onChange={(e) => (setCaptureText(e.target.value), capture.changed())}
            />
            <button type="submit" disabled={capture.busy || voiding.busy}>
              Capture
            </button>
          </Form>
          <button type="button" className="secondary" disabled={capture.busy || voiding.busy} onClick={() => void doVoid()}>
            Void the hold
          </button>
        </section>
      )}
      <Outcome error={error} />
      <Outcome error={capture.error} done={capture.done} />
      <Outcome error={voiding.error} done={voiding.done} />
    </>
  );
}

// Sign-up, login (password, then the emailed code or the emailed link approved on any device),
// the pages the emailed links open, forgotten password and password change.
import { useEffect, useRef, useState } from 'react';
import { RestError } from '@bank/proto/bank/v1/rest_client';
import { Link, navigate, usePageTitle } from '../router.tsx';
import { COOKIE_DELIVERY, publicClient, session, withApi } from '../session.ts';
import { Field, Form, Notice, Outcome, describeError, useSubmission } from '../ui.tsx';

/** How often the login page asks whether the emailed link approved the login. */
const APPROVAL_POLL_MS = 2_000;

export function SignUpPage() {
  usePageTitle('Open your bank membership');
  const [form, setForm] = useState({ username: '', fullName: '', email: '', password: '' });
  const submission = useSubmission();
  const edit = (name: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [name]: e.target.value });
  const submit = () =>
    submission.run(async () => {
      await publicClient.user.createUser(form);
      return `Welcome, ${form.fullName}. We sent an email to ${form.email}: open its link to verify your address, then log in.`;
    });
  return (
    <>
      <h1 tabIndex={-1}>Sign up</h1>
      <Form onSubmit={submit} label="Sign up">
        <Field label="Username" hint="3 to 32 characters: lower-case letters, digits and _" autoComplete="username" required value={form.username} onChange={edit('username')} />
        <Field label="Full name" autoComplete="name" required value={form.fullName} onChange={edit('fullName')} />
        <Field label="Email address" type="email" autoComplete="email" required value={form.email} onChange={edit('email')} />
        <Field label="Password" hint="8 to 128 characters; not a common password" type="password" autoComplete="new-password" required value={form.password} onChange={edit('password')} />
        <button type="submit" disabled={submission.busy}>
          Sign up
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done} />
      <p>
        Already a member? <Link to="/app/login">Log in</Link>
      </p>
    </>
  );
}

type Pending = { sessionId: string; loginSecret: string; username: string };

export function LoginPage() {
  usePageTitle('Log in');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [pending, setPending] = useState<Pending | null>(null);
  const [expired, setExpired] = useState(false);
  const step1 = useSubmission();
  const step2 = useSubmission();
  const finished = useRef(false);

  const finish = (tokens: Parameters<typeof session.signedIn>[0]) => {
    if (finished.current) return;
    finished.current = true;
    session.signedIn(tokens);
    navigate('/app/', { replace: true });
  };

  // While the code form shows, ask now and then whether the emailed link approved this login:
  // the login secret alone confirms it then, and this page carries on by itself.
  useEffect(() => {
    if (!pending) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const ask = async () => {
      try {
        const tokens = await publicClient.auth.confirmLogin({ sessionId: pending.sessionId, loginSecret: pending.loginSecret }, { headers: COOKIE_DELIVERY });
        if (!stopped) finish(tokens);
        return;
      } catch (error) {
        if (error instanceof RestError && error.status === 401) {
          if (!stopped) setExpired(true);
          return;
        }
      }
      if (!stopped) timer = setTimeout(() => void ask(), APPROVAL_POLL_MS);
    };
    timer = setTimeout(() => void ask(), APPROVAL_POLL_MS);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [pending]);

  if (pending && !expired) {
    const confirm = () =>
      step2.run(async () => {
        const tokens = await publicClient.auth.confirmLogin({ sessionId: pending.sessionId, loginSecret: pending.loginSecret, code: code.trim() }, { headers: COOKIE_DELIVERY });
        finish(tokens);
        return null;
      });
    return (
      <>
        <h1 tabIndex={-1}>Check your email</h1>
        <p>
          We emailed <strong>{pending.username}</strong> a 6-digit code. Enter it here, or open the link in that email on any device and
          approve the login: this page then continues by itself.
        </p>
        <Form onSubmit={confirm} label="Confirm the login">
          <Field
            label="6-digit code"
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9]{6}"
            maxLength={6}
            required
            value={code}
            onChange={(e) => setCode(e.target.value)}
          />
          <button type="submit" disabled={step2.busy}>
            Confirm
          </button>
        </Form>
        <Outcome error={step2.error} />
        <p role="status" className="hint">
          Waiting for the code or the link…
        </p>
      </>
    );
  }

  const start = () =>
    step1.run(async () => {
      const answer = await publicClient.auth.login({ username: username.trim(), password });
      finished.current = false;
      setExpired(false);
      setCode('');
      setPending({ sessionId: answer.sessionId, loginSecret: answer.loginSecret, username: username.trim() });
      return null;
    });
  return (
    <>
      <h1 tabIndex={-1}>Log in</h1>
      {expired && <Notice kind="error">That login expired or was refused. Enter your password again.</Notice>}
      <Form onSubmit={start} label="Log in">
        <Field label="Username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
        <Field label="Password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        <button type="submit" disabled={step1.busy}>
          Continue
        </button>
      </Form>
      <Outcome error={step1.error} />
      <p>
        <Link to="/app/forgot-password">Forgot your password?</Link>
      </p>
      <p>
        New here? <Link to="/app/signup">Sign up</Link>
      </p>
    </>
  );
}

/** Reads the emailed link's values once and takes them out of the address bar and history. */
function useLinkParams(names: readonly string[]): Record<string, string> {
  const [values] = useState(() => {
    const query = new URLSearchParams(window.location.search);
    return Object.fromEntries(names.map((n) => [n, query.get(n) ?? '']));
  });
  useEffect(() => {
    if (window.location.search) window.history.replaceState(null, '', window.location.pathname);
  }, []);
  return values;
}

export function VerifyEmailPage() {
  usePageTitle('Verify your email address');
  const link = useLinkParams(['email_id', 'secret_code']);
  const submission = useSubmission();
  const complete = /^[1-9][0-9]*$/.test(link.email_id ?? '') && Boolean(link.secret_code);
  const verify = () =>
    submission.run(
      async () => {
        await publicClient.user.verifyEmail({ emailId: BigInt(link.email_id ?? '0'), secretCode: link.secret_code ?? '' });
        return 'Your email address is verified. You can log in now.';
      },
      (error) =>
        error instanceof RestError && error.status < 500 && error.status !== 429
          ? 'This link has expired, was already used, or was replaced by a newer one. If you verified already, just log in; otherwise log in and ask for a new link.'
          : describeError(error),
    );
  return (
    <>
      <h1 tabIndex={-1}>Verify your email address</h1>
      <p>Confirm that this email address belongs to your new bank account.</p>
      {complete ? (
        <button type="button" onClick={() => void verify()} disabled={submission.busy || Boolean(submission.done)}>
          Verify my email address
        </button>
      ) : (
        <Notice kind="error">This link is incomplete: open the whole link from the email.</Notice>
      )}
      <Outcome error={submission.error} done={submission.done}>
        <Link to="/app/login">Log in</Link>
      </Outcome>
    </>
  );
}

export function ApproveLoginPage() {
  usePageTitle('Approve this login');
  const link = useLinkParams(['session_id', 'token']);
  const submission = useSubmission();
  const complete = Boolean(link.session_id && link.token);
  const approve = () =>
    submission.run(
      async () => {
        await publicClient.auth.approveLogin({ sessionId: link.session_id ?? '', token: link.token ?? '' });
        return 'Login approved. Go back to the device you are logging in on: it finishes the login by itself.';
      },
      (error) =>
        error instanceof RestError && error.status === 401 ? 'This link has expired or was already used. Log in again to get a new one.' : describeError(error),
    );
  return (
    <>
      <h1 tabIndex={-1}>Approve this login</h1>
      <p>
        Someone is logging in to your bank account with your password. Approve only if it is you, now. The device that gave the password
        then finishes the login by itself; this page opens no session.
      </p>
      {complete ? (
        <button type="button" onClick={() => void approve()} disabled={submission.busy || Boolean(submission.done)}>
          Yes, it is me: approve this login
        </button>
      ) : (
        <Notice kind="error">This link is incomplete: open the whole link from the email.</Notice>
      )}
      <Outcome error={submission.error} done={submission.done} />
    </>
  );
}

export function ForgotPasswordPage() {
  usePageTitle('Forgot your password');
  const [email, setEmail] = useState('');
  const submission = useSubmission();
  const submit = () =>
    submission.run(async () => {
      await publicClient.password.requestPasswordReset({ email: email.trim() });
      return `If ${email.trim()} is the verified address of an account, an email with a link to choose a new password is on its way.`;
    });
  return (
    <>
      <h1 tabIndex={-1}>Forgot your password</h1>
      <Form onSubmit={submit} label="Ask for a password reset link">
        <Field label="Email address" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <button type="submit" disabled={submission.busy}>
          Email me a link
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done} />
      <p>
        <Link to="/app/login">Back to log in</Link>
      </p>
    </>
  );
}

export function ResetPasswordPage() {
  usePageTitle('Choose a new password');
  const link = useLinkParams(['reset_id', 'secret']);
  const [password, setPassword] = useState('');
  const submission = useSubmission();
  const complete = Boolean(link.reset_id && link.secret);
  const submit = () =>
    submission.run(
      async () => {
        await publicClient.password.confirmPasswordReset({ resetId: link.reset_id ?? '', secret: link.secret ?? '', newPassword: password });
        return 'Your new password is set, and every session was logged out. Log in with it now.';
      },
      (error) =>
        error instanceof RestError && error.status === 401 ? 'This link has expired or was already used. Ask for a new one.' : describeError(error),
    );
  return (
    <>
      <h1 tabIndex={-1}>Choose a new password</h1>
      {complete ? (
        <Form onSubmit={submit} label="Choose a new password">
          <Field
            label="New password"
            hint="8 to 128 characters; not a common one. Every session of the account is logged out once it is set."
            type="password"
            autoComplete="new-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <button type="submit" disabled={submission.busy || Boolean(submission.done)}>
            Set my new password
          </button>
        </Form>
      ) : (
        <Notice kind="error">This link is incomplete: open the whole link from the email.</Notice>
      )}
      <Outcome error={submission.error} done={submission.done}>
        <Link to="/app/login">Log in</Link>
      </Outcome>
    </>
  );
}

export function SettingsPage() {
  usePageTitle('Your settings');
  const user = session.get()?.user;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const submission = useSubmission();
  const submit = () =>
    submission.run(async () => {
      await withApi((api) => api.password.changePassword({ username: user?.username ?? '', currentPassword: current, newPassword: next }));
      setCurrent('');
      setNext('');
      return 'Your password is changed. Your other sessions were logged out.';
    });
  return (
    <>
      <h1 tabIndex={-1}>Your settings</h1>
      {user && (
        <dl className="facts">
          <dt>Username</dt>
          <dd>{user.username}</dd>
          <dt>Name</dt>
          <dd>{user.fullName}</dd>
          <dt>Email</dt>
          <dd>
            {user.email} {user.isEmailVerified ? '(verified)' : '(not verified)'}
          </dd>
        </dl>
      )}
      <h2>Change your password</h2>
      <Form onSubmit={submit} label="Change your password">
        <Field label="Current password" type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        <Field label="New password" hint="8 to 128 characters; not a common one" type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} />
        <button type="submit" disabled={submission.busy}>
          Change password
        </button>
      </Form>
      <Outcome error={submission.error} done={submission.done} />
    </>
  );
}

// The web bank: one page per path under /app, the session restored from the refresh cookie on load.
import { StrictMode, useEffect, useSyncExternalStore } from 'react';
import { createRoot } from 'react-dom/client';
import { AccountPage, AccountsPage, TransferPage } from './pages/accounts.tsx';
import { ApproveLoginPage, ForgotPasswordPage, LoginPage, ResetPasswordPage, SettingsPage, SignUpPage, VerifyEmailPage } from './pages/auth.tsx';
import { Link, Redirect, navigate, useLocation } from './router.tsx';
import { logOut, restoreSession, session } from './session.ts';
import './styles.css';

/** Pages anyone may open, signed in or not (the emailed links' pages among them). */
const PUBLIC_PAGES: Record<string, () => React.JSX.Element> = {
  '/app/verify-email': VerifyEmailPage,
  '/app/approve-login': ApproveLoginPage,
  '/app/reset-password': ResetPasswordPage,
};
/** Pages for people who are not signed in. */
const SIGNED_OUT_PAGES: Record<string, () => React.JSX.Element> = {
  '/app/login': LoginPage,
  '/app/signup': SignUpPage,
  '/app/forgot-password': ForgotPasswordPage,
};

function useSession() {
  const current = useSyncExternalStore(session.subscribe, session.get);
  const ready = useSyncExternalStore(session.subscribe, session.ready);
  return { current, ready };
}

function Page({ path, signedIn }: { path: string; signedIn: boolean }) {
  const Public = PUBLIC_PAGES[path];
  if (Public) return <Public />;
  const SignedOut = SIGNED_OUT_PAGES[path];
  if (SignedOut) return signedIn ? <Redirect to="/app/" /> : <SignedOut />;
  if (!signedIn) return <Redirect to="/app/login" />;
  if (path === '/app') return <AccountsPage />;
  if (path === '/app/settings') return <SettingsPage />;
  const account = /^\/app\/accounts\/([1-9][0-9]{0,18})$/.exec(path);
  if (account?.[1]) return <AccountPage key={account[1]} accountId={account[1]} />;
  const transfer = /^\/app\/transfers\/([1-9][0-9]{0,18})$/.exec(path);
  if (transfer?.[1]) return <TransferPage key={transfer[1]} transferId={transfer[1]} />;
  return (
    <>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        <Link to="/app/">Go to your accounts</Link>
      </p>
    </>
  );
}

function App() {
  const { path } = useLocation();
  const { current, ready } = useSession();
  useEffect(() => {
    void restoreSession();
  }, []);
  const signOut = async () => {
    await logOut();
    navigate('/app/login', { replace: true });
  };
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/app/" className="brand">
          Bank
        </Link>
        {current && (
          <nav aria-label="Main">
            <Link to="/app/">Accounts</Link>
            <Link to="/app/settings">Settings</Link>
            <button type="button" className="link" onClick={() => void signOut()}>
              Log out
            </button>
          </nav>
        )}
      </header>
      <main id="main">{ready || PUBLIC_PAGES[path] ? <Page path={path} signedIn={current !== null} /> : <p role="status">Loading…</p>}</main>
    </>
  );
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}

/* global document, window */
// The script of the minimal pages the API serves until the web app exists (/app/approve-login,
// /app/verify-email, /app/reset-password; ./minimal-pages.ts). It reads the emailed link's values, posts them when the
// person presses the button (a link scanner that only fetches the page changes nothing), and
// says what happened. A file of its own, never inline, so the pages work under the API's
// Content-Security-Policy (script-src 'self').
(() => {
  const main = document.querySelector('main[data-page]');
  const button = document.getElementById('go');
  const status = document.getElementById('status');
  if (!main || !button || !status) return;
  const params = new URLSearchParams(window.location.search);
  // The link's secrets leave the address bar and the history once read.
  window.history.replaceState(null, '', window.location.pathname);
  const say = (text) => {
    status.textContent = text;
  };

  const actions = {
    'approve-login': () => ({
      url: `/v1/sessions/${encodeURIComponent(params.get('session_id') ?? '')}/approve`,
      body: { token: params.get('token') ?? '' },
      complete: Boolean(params.get('session_id') && params.get('token')),
      done: 'Login approved. Go back to the device you are logging in on: it finishes the login by itself.',
    }),
    'verify-email': () => ({
      url: '/v1/verify-email',
      body: { emailId: params.get('email_id') ?? '', secretCode: params.get('secret_code') ?? '' },
      complete: Boolean(params.get('email_id') && params.get('secret_code')),
      done: 'Your email address is verified. You can log in now.',
    }),
    // The new password is read when the button is pressed, never before.
    'reset-password': () => ({
      url: `/v1/password-resets/${encodeURIComponent(params.get('reset_id') ?? '')}/confirm`,
      body: () => ({ secret: params.get('secret') ?? '', newPassword: document.getElementById('new-password')?.value ?? '' }),
      complete: Boolean(params.get('reset_id') && params.get('secret')),
      // A password the bank refuses (too short, too common) may be replaced by another.
      retryOnInvalid: true,
      done: 'Your new password is set, and every session was logged out. Log in with it now.',
    }),
  };
  const action = actions[main.getAttribute('data-page')];
  if (!action) return;
  const request = action();
  if (!request.complete) {
    button.disabled = true;
    say('This link is incomplete: open the whole link from the email.');
    return;
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    say('Sending…');
    try {
      const response = await window.fetch(request.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(typeof request.body === 'function' ? request.body() : request.body),
        credentials: 'omit',
        cache: 'no-store',
      });
      if (response.ok) {
        say(request.done);
        return;
      }
      const problem = await response.json().catch(() => ({}));
      say(`That did not work: ${problem.detail ?? `the bank answered ${response.status}`}.`);
      // A refusal stays one; a busy or unreachable bank is worth another press.
      if (response.status === 429 || response.status >= 500 || (response.status === 400 && request.retryOnInvalid)) button.disabled = false;
    } catch {
      say('The bank could not be reached; try again.');
      button.disabled = false;
    }
  });
})();

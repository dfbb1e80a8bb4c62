import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * The development inbox: an SMTP receiver that keeps every message (in memory and, with a data
 * folder, in `inbox.jsonl` so a restart keeps them) and a small web page that lists them with
 * their bodies and clickable links. `npm start` points the worker at it; the smoke walkthrough
 * reads the verification and login emails from its JSON API (`GET /api/messages`).
 */
export type InboxMessage = {
  id: string;
  receivedAt: string;
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
};

export type Inbox = {
  smtpPort: number;
  httpPort: number;
  messages(): InboxMessage[];
  close(): Promise<void>;
};

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

const linkify = (text: string) =>
  escapeHtml(text).replace(/https?:\/\/[^\s<>"']+/g, (url) => `<a href="${url}">${url}</a>`);

const PAGE_STYLE = `body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2330}
table{border-collapse:collapse;width:100%}td,th{padding:.4rem .6rem;border-bottom:1px solid #dde;text-align:left}
pre{white-space:pre-wrap;background:#f6f7fb;padding:1rem;border-radius:6px}iframe{width:100%;height:28rem;border:1px solid #dde}`;

function listPage(messages: InboxMessage[]): string {
  const rows = messages
    .slice()
    .reverse()
    .map(
      (m) =>
        `<tr><td>${escapeHtml(m.receivedAt.replace('T', ' ').slice(0, 19))}</td><td>${escapeHtml(m.from)}</td>` +
        `<td>${escapeHtml(m.to.join(', '))}</td><td><a href="/messages/${m.id}">${escapeHtml(m.subject || '(no subject)')}</a></td></tr>`,
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Bank inbox</title><meta http-equiv="refresh" content="5"><style>${PAGE_STYLE}</style></head>
<body><h1>Development inbox</h1><p>${messages.length} message(s). Every email the local stack sends lands here.</p>
<table><thead><tr><th>received</th><th>from</th><th>to</th><th>subject</th></tr></thead><tbody>${rows}</tbody></table></body></html>`;
}

function messagePage(m: InboxMessage): string {
  const html = m.html
    ? `<h2>HTML</h2><iframe sandbox="allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation" srcdoc="${escapeHtml(m.html)}"></iframe>`
    : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(m.subject)}</title><style>${PAGE_STYLE}</style></head>
<body><p><a href="/">&larr; all messages</a></p><h1>${escapeHtml(m.subject || '(no subject)')}</h1>
<p>From ${escapeHtml(m.from)} to ${escapeHtml(m.to.join(', '))}, ${escapeHtml(m.receivedAt)}</p>
<h2>Text</h2><pre>${linkify(m.text)}</pre>${html}</body></html>`;
}

export async function startInbox(options: { smtpPort?: number; httpPort?: number; host?: string; dataDir?: string } = {}): Promise<Inbox> {
  const host = options.host ?? '127.0.0.1';
  const store = options.dataDir ? path.join(options.dataDir, 'inbox.jsonl') : null;
  const messages: InboxMessage[] = [];
  if (store && existsSync(store)) {
    for (const line of readFileSync(store, 'utf8').split('\n')) if (line.trim()) messages.push(JSON.parse(line) as InboxMessage);
  }
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });

  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    banner: 'bank development inbox',
    size: 5 * 1024 * 1024,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const message: InboxMessage = {
            id: randomUUID(),
            receivedAt: new Date().toISOString(),
            from: parsed.from?.text ?? session.envelope.mailFrom?.toString() ?? '',
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
          };
          messages.push(message);
          if (store) appendFileSync(store, `${JSON.stringify(message)}\n`);
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  smtp.on('error', (error) => console.error(`inbox: smtp error: ${error.message}`));
  await new Promise<void>((resolve, reject) => {
    smtp.server.once('error', reject);
    smtp.listen(options.smtpPort ?? 1025, host, () => resolve());
  });

  const web = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://inbox');
    if (req.method === 'GET' && url.pathname === '/api/messages') {
      const to = url.searchParams.get('to');
      const body = JSON.stringify(to ? messages.filter((m) => m.to.includes(to)) : messages);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(listPage(messages));
      return;
    }
    const match = /^\/messages\/([0-9a-f-]{36})$/.exec(url.pathname);
    const found = match && messages.find((m) => m.id === match[1]);
    if (req.method === 'GET' && found) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(messagePage(found));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    web.once('error', reject);
    web.listen(options.httpPort ?? 8025, host, () => resolve());
  });

  return {
    smtpPort: (smtp.server.address() as AddressInfo).port,
    httpPort: (web.address() as AddressInfo).port,
    messages: () => messages.slice(),
    close: async () => {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
      web.closeAllConnections();
      await new Promise<void>((resolve) => web.close(() => resolve()));
    },
  };
}

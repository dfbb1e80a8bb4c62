import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from '@jest/globals';
import { SMTPServer } from 'smtp-server';
import { startTestSmtpServer } from '../../../test/smtp.ts';
import { Mailer, transportOptions } from './mailer.ts';

const email = { to: 'alice@example.test', subject: 'Hello', text: 'hi', html: '<p>hi</p>' };

describe('Mailer', () => {
  const servers: SMTPServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  /** A real SMTP server without STARTTLS that records any AUTH it is offered (and counts connections). */
  async function plainServer(authSeen: string[], counts: { connections: number; emails: number } = { connections: 0, emails: 0 }): Promise<number> {
    const server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      onConnect(_session, callback) {
        counts.connections += 1;
        callback();
      },
      onAuth(auth, _session, callback) {
        authSeen.push(auth.username ?? '');
        callback(null, { user: auth.username });
      },
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => {
          counts.emails += 1;
          callback();
        });
      },
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return (server.server.address() as AddressInfo).port;
  }

  it('delivers the whole message as composed: envelope, headers, text, html (UTF-8) and an attachment byte for byte', async () => {
    const smtp = await startTestSmtpServer();
    const mailer = new Mailer({ smtpUrl: smtp.url, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000, maxConnections: 1 });
    try {
      const pdf = new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x2d, 0x31, 0x2e, 0x37, 0x0a, 0x00, 0xff, 0x2e, 0x0d, 0x0a, 0x2e]);
      const body = `Grüße, ${'line of text '.repeat(30)}\n.\nthe line above is a lone dot`;
      await mailer.send(
        { to: 'carol@example.test', subject: 'Your statement: 1 000 €', text: body, html: `<p>${body}</p>`, attachments: [{ filename: 'statement.pdf', contentType: 'application/pdf', content: pdf }] },
        { messageId: '<statement-1@bank.outbox>' },
      );
      const [message] = await smtp.waitFor((messages) => messages.length === 1);
      expect(message).toMatchObject({ to: ['carol@example.test'], from: 'no-reply@bank.test', subject: 'Your statement: 1 000 €', messageId: '<statement-1@bank.outbox>' });
      expect(message!.text.trim()).toBe(body);
      expect(message!.html).toBe(`<p>${body}</p>`);
      expect(message!.parsed.from?.value).toEqual([{ name: 'Bank', address: 'no-reply@bank.test' }]);
      expect(message!.parsed.to).toMatchObject({ text: 'carol@example.test' });
      expect(message!.parsed.date).toBeInstanceOf(Date);
      const [attachment, ...others] = message!.parsed.attachments;
      expect(others).toEqual([]);
      expect([attachment?.filename, attachment?.contentType, [...(attachment?.content ?? [])]]).toEqual(['statement.pdf', 'application/pdf', [...pdf]]);
    } finally {
      mailer.close();
      await smtp.close();
    }
  });

  it('never sends credentials over a connection that could not be upgraded to TLS', async () => {
    const authSeen: string[] = [];
    const port = await plainServer(authSeen);
    const mailer = new Mailer({ smtpUrl: `smtp://bank:s3cret@127.0.0.1:${port}`, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000 });
    await expect(mailer.send(email, { messageId: '<a@bank.test>' })).rejects.toThrow(/STARTTLS|TLS/i);
    expect(authSeen).toEqual([]);
  });

  it('sends without TLS only where there are no credentials (the development inbox)', async () => {
    const authSeen: string[] = [];
    const port = await plainServer(authSeen);
    const mailer = new Mailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000 });
    await expect(mailer.send(email, { messageId: '<b@bank.test>' })).resolves.toEqual({ accepted: 1 });
    expect(authSeen).toEqual([]);
  });

  it('without maxConnections, each email has a connection of its own', async () => {
    const counts = { connections: 0, emails: 0 };
    const port = await plainServer([], counts);
    const mailer = new Mailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000 });
    for (let i = 0; i < 3; i++) await mailer.send(email, { messageId: `<single-${i}@bank.test>` });
    mailer.close();
    expect(counts).toEqual({ connections: 3, emails: 3 });
  });

  it('with maxConnections, emails one after another share a kept-open connection', async () => {
    const counts = { connections: 0, emails: 0 };
    const port = await plainServer([], counts);
    const mailer = new Mailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000, maxConnections: 3 });
    try {
      for (let i = 0; i < 5; i++) await expect(mailer.send(email, { messageId: `<pooled-${i}@bank.test>` })).resolves.toEqual({ accepted: 1 });
      expect(counts).toEqual({ connections: 1, emails: 5 });
    } finally {
      mailer.close();
    }
  });

  it('with maxConnections, emails sent at once use at most that many connections, each delivered', async () => {
    const counts = { connections: 0, emails: 0 };
    const port = await plainServer([], counts);
    const mailer = new Mailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000, maxConnections: 2 });
    try {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => mailer.send(email, { messageId: `<burst-${i}@bank.test>` })));
      expect(answers).toEqual(Array.from({ length: 10 }, () => ({ accepted: 1 })));
      expect(counts.emails).toBe(10);
      expect(counts.connections).toBeLessThanOrEqual(2);
    } finally {
      mailer.close();
    }
  });

  it('with maxConnections, a connection the server dropped is replaced and the next email goes out', async () => {
    const counts = { connections: 0, emails: 0 };
    const port = await plainServer([], counts);
    const server = servers.at(-1)!;
    const mailer = new Mailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'Bank <no-reply@bank.test>', timeoutMs: 5_000, maxConnections: 1 });
    try {
      await mailer.send(email, { messageId: '<before-drop@bank.test>' });
      // The server ends every open connection (as a restarted relay would).
      for (const connection of (server as unknown as { connections: Set<{ close(): void }> }).connections) connection.close();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await expect(mailer.send(email, { messageId: '<after-drop@bank.test>' })).resolves.toEqual({ accepted: 1 });
      expect(counts).toEqual({ connections: 2, emails: 2 });
    } finally {
      mailer.close();
    }
  });

  it('reads SMTP_URL: smtps is TLS from the start, smtp with credentials requires STARTTLS', () => {
    expect(transportOptions('smtps://u:p%40ss@smtp.gmail.com', 1_000)).toMatchObject({ port: 465, secure: true, requireTLS: false, auth: { user: 'u', pass: 'p@ss' } });
    expect(transportOptions('smtp://u:p@smtp.gmail.com', 1_000)).toMatchObject({ port: 587, secure: false, requireTLS: true });
    expect(transportOptions('smtp://127.0.0.1:1025', 1_000)).toMatchObject({ port: 1025, secure: false, requireTLS: false, auth: undefined });
  });
});

import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from '@jest/globals';
import { SMTPServer } from 'smtp-server';
import { Mailer, transportOptions } from './mailer.ts';

const email = { to: 'alice@example.test', subject: 'Hello', text: 'hi', html: '<p>hi</p>' };

describe('Mailer', () => {
  const servers: SMTPServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  /** A real SMTP server without STARTTLS that records any AUTH it is offered. */
  async function plainServer(authSeen: string[]): Promise<number> {
    const server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      onAuth(auth, _session, callback) {
        authSeen.push(auth.username ?? '');
        callback(null, { user: auth.username });
      },
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => callback());
      },
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return (server.server.address() as AddressInfo).port;
  }

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

  it('reads SMTP_URL: smtps is TLS from the start, smtp with credentials requires STARTTLS', () => {
    expect(transportOptions('smtps://u:p%40ss@smtp.gmail.com', 1_000)).toMatchObject({ port: 465, secure: true, requireTLS: false, auth: { user: 'u', pass: 'p@ss' } });
    expect(transportOptions('smtp://u:p@smtp.gmail.com', 1_000)).toMatchObject({ port: 587, secure: false, requireTLS: true });
    expect(transportOptions('smtp://127.0.0.1:1025', 1_000)).toMatchObject({ port: 1025, secure: false, requireTLS: false, auth: undefined });
  });
});

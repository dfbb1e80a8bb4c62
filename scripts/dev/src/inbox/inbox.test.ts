import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import nodemailer from 'nodemailer';
import { startInbox, type Inbox } from './inbox.ts';

describe('development inbox', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function inboxIn(dir: string): Promise<Inbox> {
    const inbox = await startInbox({ smtpPort: 0, httpPort: 0, dataDir: dir });
    cleanups.push(() => inbox.close());
    return inbox;
  }

  it('receives real SMTP mail, lists it on its page with clickable links, and keeps it across a restart', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bank-inbox-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const inbox = await inboxIn(dir);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: inbox.smtpPort, secure: false, ignoreTLS: true });
    await transport.sendMail({
      from: 'Bank <no-reply@bank.local>',
      to: 'alice@example.test',
      subject: 'Verify your email <now>',
      text: 'Follow http://localhost:8080/app/verify-email?email_id=1&secret_code=abc to verify.',
      html: '<p><a href="http://localhost:8080/app/verify-email?email_id=1&amp;secret_code=abc">Verify</a></p>',
    });
    transport.close();

    const api = (await (await fetch(`http://127.0.0.1:${inbox.httpPort}/api/messages?to=alice@example.test`)).json()) as Array<{ id: string; subject: string; text: string; from: string }>;
    expect(api).toHaveLength(1);
    expect(api[0]).toMatchObject({ subject: 'Verify your email <now>', from: expect.stringContaining('no-reply@bank.local') });
    const list = await (await fetch(`http://127.0.0.1:${inbox.httpPort}/`)).text();
    expect(list).toContain('Verify your email &lt;now&gt;');
    expect(list).toContain(`/messages/${api[0]!.id}`);
    const page = await (await fetch(`http://127.0.0.1:${inbox.httpPort}/messages/${api[0]!.id}`)).text();
    expect(page).toContain('<a href="http://localhost:8080/app/verify-email?email_id=1&amp;secret_code=abc">');
    expect((await fetch(`http://127.0.0.1:${inbox.httpPort}/messages/00000000-0000-0000-0000-000000000000`)).status).toBe(404);

    await inbox.close();
    cleanups.pop();
    const again = await inboxIn(dir);
    expect(again.messages().map((m) => m.subject)).toEqual(['Verify your email <now>']);
  });
});

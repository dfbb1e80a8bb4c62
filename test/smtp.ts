import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export type CapturedEmail = {
  /** The envelope recipients (RCPT TO). */
  to: string[];
  from: string;
  subject: string;
  text: string;
  html: string;
  messageId: string | undefined;
  raw: string;
  parsed: ParsedMail;
  receivedAt: Date;
};

export type TestSmtpServer = {
  /** smtp://127.0.0.1:<port> for SMTP_URL. */
  url: string;
  port: number;
  /** Every accepted message so far, in order. */
  messages: CapturedEmail[];
  /** Messages sent to this address (case-insensitive). */
  messagesTo: (address: string) => CapturedEmail[];
  /** Resolves when `predicate` holds for the message list; rejects after `timeoutMs`. */
  waitFor: (predicate: (messages: CapturedEmail[]) => boolean, timeoutMs?: number) => Promise<CapturedEmail[]>;
  /** Resolves with the first message to `address`, waiting up to `timeoutMs`. */
  waitForMessageTo: (address: string, timeoutMs?: number) => Promise<CapturedEmail>;
  close: () => Promise<void>;
};

/**
 * A real SMTP receiver on a free local port (no TLS, any or no credentials) that keeps every
 * message, parsed. `acceptDelayMs` holds the final "250 OK" after the data arrived; a message whose
 * client disconnects during that delay is NOT recorded, as a real server would not accept it
 * (tests use this to kill a sender mid-delivery). `acceptTogether` holds each "250 OK" until that
 * many messages wait for theirs, then answers them all at once (a message that waits
 * `acceptDelayMs`, default 2 s, is answered alone): their senders go on at the same moment.
 */
export async function startTestSmtpServer(options: { acceptDelayMs?: number; acceptTogether?: number } = {}): Promise<TestSmtpServer> {
  const messages: CapturedEmail[] = [];
  const closedSessions = new Set<string>();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  let held: (() => void)[] = [];
  const holdForOthers = (together: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        held = held.filter((release) => release !== answer);
        resolve();
      }, options.acceptDelayMs ?? 2_000);
      const answer = () => {
        clearTimeout(timer);
        resolve();
      };
      held.push(answer);
      if (held.length >= together) {
        const group = held;
        held = [];
        for (const release of group) release();
      }
    });

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth: (_auth, _session, callback) => callback(null, { user: 'test' }),
    onClose: (session) => {
      closedSessions.add(session.id);
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const accept = async () => {
          if (options.acceptTogether) await holdForOthers(options.acceptTogether);
          else if (options.acceptDelayMs) await new Promise((resolve) => setTimeout(resolve, options.acceptDelayMs));
          if (closedSessions.has(session.id)) return; // the client went away before our 250
          const parsed = await simpleParser(raw);
          messages.push({
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address.toLowerCase()),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            messageId: parsed.messageId,
            raw,
            parsed,
            receivedAt: new Date(),
          });
          callback();
          notify();
        };
        accept().catch((error: unknown) => callback(error as Error));
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined);
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('SMTP server has no port');
  const port = address.port;

  const waitFor = (predicate: (list: CapturedEmail[]) => boolean, timeoutMs = 15_000) =>
    new Promise<CapturedEmail[]>((resolve, reject) => {
      if (predicate(messages)) return resolve(messages);
      const check = () => {
        if (predicate(messages)) {
          cleanup();
          resolve(messages);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for emails (have ${messages.length})`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
    });

  const messagesTo = (address: string) => messages.filter((message) => message.to.includes(address.toLowerCase()));

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    messagesTo,
    waitFor,
    waitForMessageTo: async (address, timeoutMs) => {
      await waitFor(() => messagesTo(address).length > 0, timeoutMs);
      return messagesTo(address)[0] as CapturedEmail;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

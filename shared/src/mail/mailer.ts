import { SpanKind } from '@opentelemetry/api';
import nodemailer, { type Transporter } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { inSpan } from '../observability/tracing.ts';
import type { RenderedEmail } from './email.templates.ts';

/** A pooled SMTP connection is replaced after this many emails (providers cap it; Gmail's is about 100). */
const MESSAGES_PER_CONNECTION = 100;

/**
 * Sends rendered emails through SMTP (SMTP_URL; Gmail SMTP in production). `send` throws
 * nodemailer's errors (connection, timeout, rejected recipients) as they are: the worker retries
 * them; error messages may quote addresses, so log them through errorSummary.
 */
export class Mailer {
  readonly #transport: Transporter;
  readonly #from: string;
  readonly #server: { 'server.address': string; 'server.port': number };

  /**
   * `maxConnections`: keep up to that many SMTP connections open and send one email after another
   * over them (nodemailer's pool: a new connection, TLS handshake and login per email otherwise);
   * each carries at most 100 emails, then is replaced. Without it, one connection per email.
   */
  constructor(options: { smtpUrl: string; from: string; timeoutMs?: number; maxConnections?: number }) {
    const transport = transportOptions(options.smtpUrl, options.timeoutMs ?? 30_000);
    this.#transport =
      options.maxConnections === undefined
        ? nodemailer.createTransport(transport)
        : nodemailer.createTransport({ ...transport, pool: true, maxConnections: options.maxConnections, maxMessages: MESSAGES_PER_CONNECTION });
    this.#from = options.from;
    this.#server = { 'server.address': transport.host, 'server.port': transport.port };
  }

  /**
   * Sends one email. `messageId` is derived from the outbox id by the caller, so a receiver can
   * recognise the (rare) re-send after a crash between SMTP acceptance and marking the row sent.
   */
  async send(email: RenderedEmail, options: { messageId: string }): Promise<{ accepted: number }> {
    // nodemailer has no OpenTelemetry instrumentation: the SMTP exchange is this client span.
    return inSpan('smtp send', { kind: SpanKind.CLIENT, attributes: { ...this.#server, 'bank.email.message_id': options.messageId } }, async (span) => {
      // The message is built whole first and handed over as one buffer: streamed as nodemailer
      // composes it, it left in dozens of small socket writes (one per header line and encoded
      // chunk), each a system call here and a read on the relay.
      const message = new MailComposer({
        from: this.#from,
        // An address object, not a string nodemailer would parse into a list of recipients.
        to: { name: '', address: email.to },
        subject: email.subject,
        text: email.text,
        html: email.html,
        messageId: options.messageId,
        attachments: email.attachments?.map((file) => ({ filename: file.filename, contentType: file.contentType, content: Buffer.from(file.content) })),
      }).compile();
      const info = await this.#transport.sendMail({ envelope: message.getEnvelope(), raw: await message.build() });
      span.setAttribute('bank.email.accepted', info.accepted?.length ?? 0);
      return { accepted: info.accepted?.length ?? 0 };
    });
  }

  close(): void {
    this.#transport.close();
  }
}

/**
 * nodemailer options from SMTP_URL. `smtps:` is TLS from the first byte (465). Plain `smtp:` with
 * credentials must upgrade with STARTTLS before it authenticates (requireTLS), so a password
 * never crosses the network in clear text; only a credential-less `smtp:` URL (the development
 * inbox) may stay unencrypted.
 */
export function transportOptions(smtpUrl: string, timeoutMs: number) {
  const url = new URL(smtpUrl);
  const secure = url.protocol === 'smtps:';
  const auth = url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined;
  return {
    host: url.hostname,
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    requireTLS: !secure && auth !== undefined,
    auth,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  };
}

import nodemailer, { type Transporter } from 'nodemailer';
import type { RenderedEmail } from './email.templates.ts';

/**
 * Sends rendered emails through SMTP (SMTP_URL; Gmail SMTP in production). `send` throws
 * nodemailer's errors (connection, timeout, rejected recipients) as they are: the worker retries
 * them; error messages may quote addresses, so log them through errorSummary.
 */
export class Mailer {
  readonly #transport: Transporter;
  readonly #from: string;

  constructor(options: { smtpUrl: string; from: string; timeoutMs?: number }) {
    const url = new URL(options.smtpUrl);
    const timeout = options.timeoutMs ?? 30_000;
    this.#transport = nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 587)),
      secure: url.protocol === 'smtps:',
      auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
    this.#from = options.from;
  }

  /**
   * Sends one email. `messageId` is derived from the outbox id by the caller, so a receiver can
   * recognise the (rare) re-send after a crash between SMTP acceptance and marking the row sent.
   */
  async send(email: RenderedEmail, options: { messageId: string }): Promise<{ accepted: number }> {
    const info = await this.#transport.sendMail({
      from: this.#from,
      to: email.to,
      subject: email.subject,
      text: email.text,
      html: email.html,
      messageId: options.messageId,
    });
    return { accepted: info.accepted?.length ?? 0 };
  }

  close(): void {
    this.#transport.close();
  }
}

import { AccountNotFound, InvalidArgument } from '@bank/shared/errors/domain-error';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { STATEMENT_BANK_NAME, statementFileName } from '@bank/shared/ledger/statement';
import { statementPdf } from '@bank/shared/ledger/statement-pdf';
import { SEND_STATEMENT_EMAIL, statementEmailPayloadSchema } from '@bank/shared/mail/email.schema';
import { renderStatementEmail } from '@bank/shared/mail/statement-email.templates';
import { UnrecoverableError } from 'bullmq';
import { defineEmailJob } from './email-job.ts';

/**
 * A monthly statement, rendered now with the code GetStatement uses (LedgerService.getStatement
 * read as the account's owner, then statementPdf): the period is in the past and its entries never
 * change, so a retry mails the same PDF bytes.
 */
export const sendStatementEmailJob = defineEmailJob({
  name: SEND_STATEMENT_EMAIL,
  payloadSchema: statementEmailPayloadSchema,
  async process(payload, { mailer, messageId, pool }) {
    const statement = await new LedgerService({ pool })
      .getStatement(
        { username: payload.username, role: 'depositor' },
        { accountId: BigInt(payload.accountId), since: new Date(payload.since), until: new Date(payload.until) },
      )
      .catch((error: unknown) => {
        // Not the owner's account, a period too long: the same answer on every retry.
        if (error instanceof AccountNotFound || error instanceof InvalidArgument) throw new UnrecoverableError(`statement refused: ${error.code}: ${error.message}`);
        throw error;
      });
    const pdf = await statementPdf(statement, { bankName: STATEMENT_BANK_NAME });
    await mailer.send(renderStatementEmail(payload, statement, { filename: statementFileName(statement, 'pdf'), content: pdf }), { messageId });
  },
});

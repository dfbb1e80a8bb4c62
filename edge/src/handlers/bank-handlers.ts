// The operations of the contract, written once over the use cases. The HTTP gateway and the gRPC
// server decode requests and encode answers; the interceptor chain authenticates; these call the
// use cases with the call's actor and AbortSignal.
import { create, type DescMessage, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { EmptySchema, timestampDate, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { AccountService, ListAccountsResponseSchema, ListEntriesResponseSchema } from '@bank/proto/bank/v1/account_service_pb';
import { AuditService, ListAuditEventsResponseSchema } from '@bank/proto/bank/v1/audit_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { PasswordService } from '@bank/proto/bank/v1/password_service_pb';
import { TransferService, ListTransfersResponseSchema } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { WebhookService } from '@bank/proto/bank/v1/webhook_service_pb';
import type { Bank } from '@bank/shared/app/bank';
import type { TransferResult } from '@bank/shared/ledger/ledger.types';
import { InvalidArgument } from '@bank/shared/errors/domain-error';
import { STATEMENT_BANK_NAME, statementCsv, statementFileName } from '@bank/shared/ledger/statement';
import { statementPdf } from '@bank/shared/ledger/statement-pdf';
import {
  fromProtoNotificationSettings,
  toProtoAccount,
  toProtoAuditEvent,
  toProtoAuthTokens,
  toProtoEntry,
  toProtoEntryIfAny,
  toProtoTransfer,
  toProtoUser,
} from './proto-mapping.ts';
import { actorOf, opts, type BoundHandler, type Handler, type HandlerContext, type ServiceHandlers } from './handler-context.ts';
import { webhookHandlers } from './webhook-handlers.ts';

/** The services both edges serve, in the order they are listed. */
export const BANK_SERVICES: readonly DescService[] = [UserService, AuthService, PasswordService, AccountService, TransferService, AuditService, WebhookService];

export type { BoundHandler, HandlerContext, ServiceHandlers } from './handler-context.ts';

/** The use cases the handlers call. */
export type UseCases = Pick<Bank, 'ledger' | 'users' | 'passwords' | 'sessions' | 'audit' | 'webhooks'>;

const date = (value: Timestamp | undefined): Date | undefined => (value ? timestampDate(value) : undefined);
/** The page and time range of a history call (entries or transfers of one account). */
const historyInput = (req: { accountId: bigint; pageSize: number; pageToken: string; since?: Timestamp | undefined; until?: Timestamp | undefined }) => ({
  accountId: req.accountId,
  pageSize: req.pageSize,
  pageToken: req.pageToken,
  since: date(req.since),
  until: date(req.until),
});
const nonEmpty = (value: string): string | undefined => (value === '' ? undefined : value);
/** memo, reference and metadata of a money request; an empty string is no value. */
const references = (req: { memo: string; reference: string; metadata: { [key: string]: string } }) => ({
  memo: nonEmpty(req.memo),
  reference: nonEmpty(req.reference),
  metadata: req.metadata,
});
const client = (ctx: HandlerContext) => ({
  ...(ctx.clientIp ? { clientIp: ctx.clientIp } : {}),
  ...(ctx.userAgent ? { userAgent: ctx.userAgent } : {}),
});

function userHandlers(app: UseCases): ServiceHandlers<typeof UserService> {
  return {
    createUser: async (req, ctx) =>
      toProtoUser(await app.users.signUp({ username: req.username, fullName: req.fullName, email: req.email, password: req.password, clientIp: ctx.clientIp }, opts(ctx))),
    verifyEmail: async (req, ctx) => {
      const user = await app.users.verifyEmail({ emailId: req.emailId, secretCode: req.secretCode }, opts(ctx));
      return { isVerified: user.isEmailVerified };
    },
    getUser: async (req, ctx) => toProtoUser(await app.users.getUser(actorOf(ctx), req.username, opts(ctx))),
    updateUser: async (req, ctx) =>
      toProtoUser(
        await app.users.updateUser(actorOf(ctx), req.username, {
          ...(req.fullName !== undefined ? { fullName: req.fullName } : {}),
          ...(req.email !== undefined ? { email: req.email } : {}),
          ...(req.password !== undefined ? { password: req.password } : {}),
          ...(req.currentPassword !== undefined ? { currentPassword: req.currentPassword } : {}),
          ...(req.notificationSettings !== undefined ? { notificationSettings: fromProtoNotificationSettings(req.notificationSettings) } : {}),
        }, opts(ctx)),
      ),
  };
}

function authHandlers(app: UseCases): ServiceHandlers<typeof AuthService> {
  return {
    login: async (req, ctx) => app.sessions.loginStart({ username: req.username, password: req.password, ...client(ctx) }, opts(ctx)),
    confirmLogin: async (req, ctx) => {
      const token = nonEmpty(req.token);
      const code = nonEmpty(req.code);
      return toProtoAuthTokens(
        await app.sessions.loginConfirm({
          sessionId: req.sessionId,
          loginSecret: req.loginSecret,
          ...(token ? { token } : {}),
          ...(code ? { code } : {}),
          ...client(ctx),
        }, opts(ctx)),
      );
    },
    approveLogin: async (req, ctx) => {
      await app.sessions.approveLogin({ sessionId: req.sessionId, token: req.token }, opts(ctx));
      return create(EmptySchema);
    },
    refreshToken: async (req, ctx) => toProtoAuthTokens(await app.sessions.refresh({ refreshToken: req.refreshToken, ...client(ctx) }, opts(ctx))),
    logout: async (req, ctx) => {
      await app.sessions.logout(actorOf(ctx), req.sessionId, opts(ctx));
      return create(EmptySchema);
    },
  };
}

function passwordHandlers(app: UseCases): ServiceHandlers<typeof PasswordService> {
  return {
    changePassword: async (req, ctx) => {
      await app.passwords.changePassword(actorOf(ctx), { username: req.username, currentPassword: req.currentPassword, newPassword: req.newPassword }, opts(ctx));
      return create(EmptySchema);
    },
    requestPasswordReset: async (req, ctx) => {
      await app.passwords.requestReset({ email: req.email, clientIp: ctx.clientIp }, opts(ctx));
      return create(EmptySchema);
    },
    confirmPasswordReset: async (req, ctx) => {
      await app.passwords.confirmReset({ resetId: req.resetId, secret: req.secret, newPassword: req.newPassword }, opts(ctx));
      return create(EmptySchema);
    },
  };
}

function accountHandlers(app: UseCases): ServiceHandlers<typeof AccountService> {
  return {
    openAccount: async (req, ctx) => toProtoAccount(await app.ledger.openAccount(actorOf(ctx), { currency: req.currency }, opts(ctx))),
    listAccounts: async (_req, ctx) =>
      create(ListAccountsResponseSchema, { accounts: (await app.ledger.listAccounts(actorOf(ctx), {}, opts(ctx))).map(toProtoAccount) }),
    getAccount: async (req, ctx) => toProtoAccount(await app.ledger.getAccount(actorOf(ctx), req.accountId, opts(ctx))),
    closeAccount: async (req, ctx) => toProtoAccount(await app.ledger.closeAccount(actorOf(ctx), req.accountId, opts(ctx))),
    deposit: async (req, ctx) => {
      const result = await app.ledger.deposit(actorOf(ctx), {
        accountId: req.accountId,
        amount: req.amount,
        idempotencyKey: req.idempotencyKey,
        ...references(req),
      }, opts(ctx));
      return {
        transfer: toProtoTransfer(result.transfer),
        entry: toProtoEntryIfAny(result.toEntry),
        balance: result.toBalance,
        replayed: result.replayed,
      };
    },
    withdraw: async (req, ctx) => {
      const result = await app.ledger.withdraw(actorOf(ctx), {
        accountId: req.accountId,
        amount: req.amount,
        destination: req.destination,
        idempotencyKey: req.idempotencyKey,
        ...references(req),
      }, opts(ctx));
      return {
        transfer: toProtoTransfer(result.transfer),
        entry: toProtoEntryIfAny(result.fromEntry),
        balance: result.fromBalance,
        replayed: result.replayed,
      };
    },
    listEntries: async (req, ctx) => {
      const page = await app.ledger.listEntries(actorOf(ctx), historyInput(req), opts(ctx));
      return create(ListEntriesResponseSchema, { entries: page.items.map(toProtoEntry), nextPageToken: page.nextPageToken });
    },
    freezeAccount: async (req, ctx) => toProtoAccount(await app.ledger.freezeAccount(actorOf(ctx), { accountId: req.accountId, reason: req.reason }, opts(ctx))),
    unfreezeAccount: async (req, ctx) => toProtoAccount(await app.ledger.unfreezeAccount(actorOf(ctx), { accountId: req.accountId, reason: req.reason }, opts(ctx))),
    getStatement: async (req, ctx) => {
      const format = req.format === '' ? 'csv' : req.format;
      if (format !== 'csv' && format !== 'pdf') throw InvalidArgument.field('format', 'must be "csv" or "pdf"');
      const statement = await app.ledger.getStatement(actorOf(ctx), { accountId: req.accountId, since: date(req.since), until: date(req.until) }, opts(ctx));
      ctx.setResponseHeader?.('content-disposition', `attachment; filename="${statementFileName(statement, format)}"`);
      return format === 'pdf'
        ? { contentType: 'application/pdf', data: await statementPdf(statement, { bankName: STATEMENT_BANK_NAME }) }
        : { contentType: 'text/csv; charset=utf-8', data: new TextEncoder().encode(statementCsv(statement)) };
    },
    getBalance: async (req, ctx) => {
      const balance = await app.ledger.getBalance(actorOf(ctx), { accountId: req.accountId, at: date(req.at) }, opts(ctx));
      return {
        accountId: balance.accountId,
        currency: balance.currency,
        balance: balance.balance,
        availableBalance: balance.availableBalance,
        at: timestampFromDate(balance.at),
      };
    },
  };
}

/** The answer of a transfer-shaped money call: the new or settled transfer, and the sending side's entry (none for a hold) and balance. */
const movedFrom = (result: TransferResult) => ({
  transfer: toProtoTransfer(result.transfer),
  fromEntry: toProtoEntryIfAny(result.fromEntry),
  fromBalance: result.fromBalance,
  replayed: result.replayed,
});

function transferHandlers(app: UseCases): ServiceHandlers<typeof TransferService> {
  return {
    createTransfer: async (req, ctx) =>
      movedFrom(
        await app.ledger.transfer(actorOf(ctx), {
          fromAccountId: req.fromAccountId,
          toAccountId: req.toAccountId,
          amount: req.amount,
          currency: req.currency,
          idempotencyKey: req.idempotencyKey,
          hold: req.hold ? { ttlSeconds: req.hold.ttlSeconds } : undefined,
          ...references(req),
        }, opts(ctx)),
      ),
    getTransfer: async (req, ctx) => toProtoTransfer(await app.ledger.getTransfer(actorOf(ctx), req.transferId, opts(ctx))),
    listTransfers: async (req, ctx) => {
      const page = await app.ledger.listTransfers(actorOf(ctx), { ...historyInput(req), reference: nonEmpty(req.reference) }, opts(ctx));
      return create(ListTransfersResponseSchema, { transfers: page.items.map(toProtoTransfer), nextPageToken: page.nextPageToken });
    },
    captureTransfer: async (req, ctx) =>
      movedFrom(await app.ledger.captureTransfer(actorOf(ctx), { transferId: req.transferId, amount: req.amount, idempotencyKey: req.idempotencyKey }, opts(ctx))),
    voidTransfer: async (req, ctx) => {
      const result = await app.ledger.voidTransfer(actorOf(ctx), { transferId: req.transferId, idempotencyKey: req.idempotencyKey }, opts(ctx));
      return { transfer: toProtoTransfer(result.transfer), replayed: result.replayed };
    },
    reverseTransfer: async (req, ctx) =>
      movedFrom(await app.ledger.reverseTransfer(actorOf(ctx), { transferId: req.transferId, memo: req.memo, idempotencyKey: req.idempotencyKey }, opts(ctx))),
    refundTransfer: async (req, ctx) =>
      movedFrom(
        await app.ledger.refundTransfer(actorOf(ctx), {
          transferId: req.transferId,
          amount: req.amount,
          idempotencyKey: req.idempotencyKey,
          ...references(req),
        }, opts(ctx)),
      ),
  };
}

function auditHandlers(app: UseCases): ServiceHandlers<typeof AuditService> {
  return {
    listAuditEvents: async (req, ctx) => {
      const page = await app.audit.listAuditEvents(actorOf(ctx), { pageSize: req.pageSize, pageToken: req.pageToken }, opts(ctx));
      return create(ListAuditEventsResponseSchema, { auditEvents: page.items.map(toProtoAuditEvent), nextPageToken: page.nextPageToken });
    },
  };
}

/**
 * Every method of BANK_SERVICES with its handler, keyed by the method's full name
 * (`bank.v1.AccountService.OpenAccount`). Throws at start-up when a method of the contract has
 * no handler, so a new RPC cannot be served half-way.
 */
export function createBankHandlers(app: UseCases): Map<string, { method: DescMethod; handle: BoundHandler }> {
  const byService: Record<string, Record<string, Handler<DescMessage, DescMessage>>> = {
    [UserService.typeName]: userHandlers(app) as never,
    [AuthService.typeName]: authHandlers(app) as never,
    [PasswordService.typeName]: passwordHandlers(app) as never,
    [AccountService.typeName]: accountHandlers(app) as never,
    [TransferService.typeName]: transferHandlers(app) as never,
    [AuditService.typeName]: auditHandlers(app) as never,
    [WebhookService.typeName]: webhookHandlers(app) as never,
  };
  const handlers = new Map<string, { method: DescMethod; handle: BoundHandler }>();
  for (const service of BANK_SERVICES) {
    for (const method of service.methods) {
      const handler = byService[service.typeName]?.[method.localName];
      if (!handler) throw new Error(`no handler for ${service.typeName}.${method.name}`);
      handlers.set(`${service.typeName}.${method.name}`, {
        method,
        handle: async (request, ctx) => create(method.output, await handler(request as never, ctx)),
      });
    }
  }
  return handlers;
}

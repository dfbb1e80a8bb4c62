// Domain values -> proto messages. Both edges answer with these, so HTTP JSON and gRPC binary
// carry the same fields.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { AuditEventSchema, type AuditEvent as ProtoAuditEvent } from '@bank/proto/bank/v1/audit_service_pb';
import { AuthTokensSchema, type AuthTokens as ProtoAuthTokens } from '@bank/proto/bank/v1/auth_service_pb';
import {
  AccountSchema,
  AccountStatus,
  EntrySchema,
  Role,
  TransferKind,
  TransferSchema,
  TransferStatus,
  UserSchema,
  type Account as ProtoAccount,
  type Entry as ProtoEntry,
  type NotificationSettings as ProtoNotificationSettings,
  type Transfer as ProtoTransfer,
  type User as ProtoUser,
} from '@bank/proto/bank/v1/types_pb';
import type { AuditEvent } from '@bank/shared/audit/audit.types';
import type { AuthTokens } from '@bank/shared/auth/session.service';
import type { Account, Entry, Transfer } from '@bank/shared/ledger/ledger.types';
import type { NotificationSettings, User } from '@bank/shared/users/user.types';

const ts = (date: Date): Timestamp => timestampFromDate(date);

export function toProtoUser(user: User): ProtoUser {
  return create(UserSchema, {
    username: user.username,
    fullName: user.fullName,
    email: user.email,
    role: user.role === 'banker' ? Role.BANKER : Role.DEPOSITOR,
    isEmailVerified: user.isEmailVerified,
    createdAt: ts(user.createdAt),
    notificationSettings: {
      moneyReceived: user.notificationSettings.moneyReceived,
      withdrawals: user.notificationSettings.withdrawals,
      holds: user.notificationSettings.holds,
    },
  });
}

/** The settings an UpdateUser names: a field left out (no presence) stays out, so it keeps its value. */
export function fromProtoNotificationSettings(settings: ProtoNotificationSettings): Partial<NotificationSettings> {
  return {
    ...(settings.moneyReceived !== undefined ? { moneyReceived: settings.moneyReceived } : {}),
    ...(settings.withdrawals !== undefined ? { withdrawals: settings.withdrawals } : {}),
    ...(settings.holds !== undefined ? { holds: settings.holds } : {}),
  };
}

export function toProtoAccount(account: Account): ProtoAccount {
  return create(AccountSchema, {
    id: account.id,
    owner: account.owner,
    currency: account.currency,
    balance: account.balance,
    availableBalance: account.availableBalance,
    status: { open: AccountStatus.OPEN, frozen: AccountStatus.FROZEN, closed: AccountStatus.CLOSED }[account.status],
    createdAt: ts(account.createdAt),
    ...(account.closedAt ? { closedAt: ts(account.closedAt) } : {}),
  });
}

const KIND: Record<Transfer['kind'], TransferKind> = {
  transfer: TransferKind.TRANSFER,
  deposit: TransferKind.DEPOSIT,
  withdrawal: TransferKind.WITHDRAWAL,
  reversal: TransferKind.REVERSAL,
  refund: TransferKind.REFUND,
};

const STATUS: Record<Transfer['status'], TransferStatus> = {
  posted: TransferStatus.POSTED,
  pending: TransferStatus.PENDING,
  voided: TransferStatus.VOIDED,
  expired: TransferStatus.EXPIRED,
};

/** What a transfer does not have stays absent: optional ints unset, strings empty, no timestamp. */
export function toProtoTransfer(transfer: Transfer): ProtoTransfer {
  return create(TransferSchema, {
    id: transfer.id,
    fromAccountId: transfer.fromAccountId,
    toAccountId: transfer.toAccountId,
    amount: transfer.amount,
    currency: transfer.currency,
    kind: KIND[transfer.kind],
    initiatedBy: transfer.initiatedBy,
    createdAt: ts(transfer.createdAt),
    status: STATUS[transfer.status],
    ...(transfer.capturedAmount !== null ? { capturedAmount: transfer.capturedAmount } : {}),
    ...(transfer.expiresAt ? { expiresAt: ts(transfer.expiresAt) } : {}),
    memo: transfer.memo ?? '',
    reference: transfer.reference ?? '',
    metadata: { ...transfer.metadata },
    destination: transfer.destination ?? '',
    ...(transfer.reversesTransferId !== null ? { reversesTransferId: transfer.reversesTransferId } : {}),
    ...(transfer.refundsTransferId !== null ? { refundsTransferId: transfer.refundsTransferId } : {}),
  });
}

export function toProtoEntry(entry: Entry): ProtoEntry {
  return create(EntrySchema, {
    id: entry.id,
    accountId: entry.accountId,
    transferId: entry.transferId,
    amount: entry.amount,
    createdAt: ts(entry.createdAt),
    balanceAfter: entry.balanceAfter,
  });
}

/** The entry a money call wrote; absent when it wrote none (a hold placed, a void). */
export const toProtoEntryIfAny = (entry: Entry | null): ProtoEntry | undefined => (entry ? toProtoEntry(entry) : undefined);

export function toProtoAuthTokens(tokens: AuthTokens): ProtoAuthTokens {
  return create(AuthTokensSchema, {
    sessionId: tokens.sessionId,
    accessToken: tokens.accessToken,
    accessTokenExpiresAt: ts(tokens.accessTokenExpiresAt),
    refreshToken: tokens.refreshToken,
    refreshTokenExpiresAt: ts(tokens.refreshTokenExpiresAt),
    user: toProtoUser(tokens.user),
  });
}

export function toProtoAuditEvent(event: AuditEvent): ProtoAuditEvent {
  return create(AuditEventSchema, {
    id: event.id,
    actor: event.actor,
    action: event.action,
    target: event.target,
    reason: event.reason ?? '',
    createdAt: ts(event.createdAt),
  });
}

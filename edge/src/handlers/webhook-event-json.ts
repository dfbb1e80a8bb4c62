// A webhook delivery's body: the event with its Transfer or Account exactly as the API's JSON
// shows them (the same proto mapping and JSON options as the HTTP gateway).
import { toJson } from '@bufbuild/protobuf';
import { AccountSchema, TransferSchema } from '@bank/proto/bank/v1/types_pb';
import type { BankEvent } from '@bank/shared/events/events.repository';
import { toProtoAccount, toProtoTransfer } from './proto-mapping.ts';

/** `{id, type, createdAt, data}` as the raw JSON text that is signed and sent. */
export function webhookEventBody(event: BankEvent): string {
  const data =
    event.subject === 'transfer'
      ? toJson(TransferSchema, toProtoTransfer(event.transfer), { alwaysEmitImplicit: true })
      : toJson(AccountSchema, toProtoAccount(event.account), { alwaysEmitImplicit: true });
  return JSON.stringify({ id: event.publicId, type: event.type, createdAt: event.createdAt.toISOString(), data });
}

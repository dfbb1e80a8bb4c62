import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from '@bank/proto/google/rpc/error_details_pb';
import { StatusSchema } from '@bank/proto/google/rpc/status_pb';
import { answerOf } from '@bank/edge/call/interceptors';
import type { ErrorAnswer } from '@bank/edge/errors/error-table';

export const ERROR_DOMAIN = 'bank.v1';

/**
 * The one place the gRPC edge maps errors: status code from the shared table, the message, and
 * `grpc-status-details-bin` with a google.rpc.Status carrying ErrorInfo (the stable code, and in
 * its metadata the request id and the facts the code carries, such as `limit` and `remaining`)
 * and, for bad input, google.rpc.BadRequest field violations (what grpcurl and Evans show).
 */
export function toServiceError(error: unknown, requestId: string): { error: Partial<ServiceError>; answer: ErrorAnswer } {
  const answer = answerOf(error);
  const pack = <M extends DescMessage>(schema: M, value: MessageShape<M>) => anyPack(schema, value);
  const anys = [pack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: answer.code, domain: ERROR_DOMAIN, metadata: { ...answer.fields, requestId } }))];
  if (answer.fieldViolations.length > 0) {
    anys.push(
      pack(
        BadRequestSchema,
        create(BadRequestSchema, { fieldViolations: answer.fieldViolations.map((v) => ({ field: v.field, description: v.description })) }),
      ),
    );
  }
  if (answer.retryAfterSeconds !== undefined) {
    anys.push(pack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: { seconds: BigInt(answer.retryAfterSeconds) } })));
  }
  const status = create(StatusSchema, { code: answer.grpc, message: answer.detail, details: anys });
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(toBinary(StatusSchema, status)));
  metadata.set('bank-error-code', answer.code);
  metadata.set('x-request-id', requestId);
  return { error: { code: answer.grpc, details: answer.detail, metadata }, answer };
}

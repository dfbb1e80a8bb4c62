// The facts a refusal carries besides its code and message, by name. Its own module (no imports)
// so that the code generator can document them in the OpenAPI document without loading the edge.

/**
 * Every property an error may expose to callers, with what it means. The error table says, per
 * code, which of them that code's errors carry; HTTP sends them as members of the problem JSON,
 * gRPC as keys of the ErrorInfo metadata, always as strings (a bigint as its decimal digits).
 * A new name must not be one of the problem's own members (type, title, status, code, detail,
 * errors, requestId).
 */
export const PROBLEM_FIELDS = {
  limit: 'LIMIT_EXCEEDED: the limit the movement would exceed (deposit_max_amount, deposit_daily_limit or outgoing_daily_limit).',
  remaining:
    'LIMIT_EXCEEDED, REFUND_EXCEEDS_TRANSFER: what the limit, or the transfer, still allows, in minor units (a decimal string).',
} as const;

export type ProblemField = keyof typeof PROBLEM_FIELDS;

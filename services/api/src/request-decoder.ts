// HTTP request -> proto request message, in canonical proto3 JSON, with errors that name the field.
import { fromJson, ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue, type MessageShape } from '@bufbuild/protobuf';
import { InvalidArgument, UnsupportedMediaType, type FieldViolation } from '@bank/shared/errors/domain-error';
import type { HttpRoute } from '@bank/edge/http/http-rules';

export type HttpRequestParts = {
  /** Router path parameters, already URL-decoded. */
  params: Record<string, string>;
  /** Query parameters as parsed by node's URLSearchParams (repeated keys give arrays). */
  query: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
  contentType: string | undefined;
  idempotencyKey: string | undefined;
};

const INT64_RANGE = 'between -9223372036854775808 and 9223372036854775807';

function describeProblem(field: DescField): string {
  if (field.fieldKind === 'enum') return `must be one of ${field.enum.values.map((v) => v.name).join(', ')}`;
  if (field.fieldKind === 'message') {
    if (field.message.typeName === 'google.protobuf.Timestamp') return 'must be an RFC 3339 timestamp such as 2024-01-31T12:00:00Z';
    return `must be a JSON object (${field.message.typeName})`;
  }
  if (field.fieldKind !== 'scalar') return 'has an invalid value';
  switch (field.scalar) {
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return `must be an integer ${INT64_RANGE} (a decimal string, or a JSON number up to 2^53)`;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return 'must be an integer between -2147483648 and 2147483647';
    case ScalarType.BOOL:
      return 'must be true or false';
    case ScalarType.STRING:
      return 'must be a string';
    default:
      return 'has an invalid value';
  }
}

/** Finds the first JSON path whose string holds U+FFFD, where the invalid UTF-8 bytes were. */
function findReplacementChar(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\uFFFD') ? path || 'body' : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = findReplacementChar(item, `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\uFFFD')) return path ? `${path}.${key}` : key;
      const found = findReplacementChar(item, path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return undefined;
}

/** `fromAccountId.x[0]` -> `from_account_id.x[0]`: the first segment by its proto name when it is a field. */
function protoPath(schema: DescMessage | undefined, path: string): string {
  if (!schema) return path;
  const head = /^[^.[]*/.exec(path)?.[0] ?? '';
  const field = fieldByKey(schema, head);
  return field ? field.name + path.slice(head.length) : path;
}

/** No request of the contract nests more than two levels; this bounds the parser's recursion. */
export const MAX_JSON_DEPTH = 32;

/**
 * One pass over JSON text for what JSON.parse does not tell: nesting deeper than MAX_JSON_DEPTH,
 * and the path of the first key repeated within one object (JSON.parse silently keeps the last
 * value, so `{"amount":"5","amount":"500"}` would mean whatever the last parser in line reads).
 * Invalid JSON is left to JSON.parse to report.
 */
function scanJsonShape(text: string): { tooDeep: boolean; duplicateKey?: string } {
  type Frame = { path: string; keys: Set<string> | undefined; key: string; index: number; expectKey: boolean };
  const stack: Frame[] = [];
  const childPath = (parent: Frame | undefined): string => {
    if (!parent) return '';
    if (parent.keys) return parent.path ? `${parent.path}.${parent.key}` : parent.key;
    return `${parent.path}[${parent.index}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top?.keys && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          return { tooDeep: false };
        }
        if (top.keys.has(key)) return { tooDeep: false, duplicateKey: top.path ? `${top.path}.${key}` : key };
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      if (stack.length >= MAX_JSON_DEPTH) return { tooDeep: true };
      stack.push({ path: childPath(top), keys: c === '{' ? new Set() : undefined, key: '', index: 0, expectKey: c === '{' });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',' && top) {
      if (top.keys) top.expectKey = true;
      else top.index++;
    }
  }
  return { tooDeep: false };
}

/** One decoder for every body: a non-streaming decode keeps no state between calls. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a JSON body. Integers beyond 2^53 keep their exact digits (as strings, which proto3 JSON
 * accepts for int64), so an overflowing amount is reported as out of range instead of being
 * silently rounded. Given the request `schema`, violations name fields by their proto
 * (snake_case) names, as every other violation does; without it, as the client spelled them.
 * @throws UnsupportedMediaType, InvalidArgument (field `body`, or the field with invalid UTF-8)
 */
export function parseJsonBody(raw: Buffer, contentType: string | undefined, schema?: DescMessage): JsonObject {
  if (raw.length === 0) return {};
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    throw new UnsupportedMediaType(type || '(none)');
  }
  let text: string;
  try {
    text = STRICT_UTF8.decode(raw);
  } catch {
    let where = 'body';
    try {
      where = findReplacementChar(JSON.parse(new TextDecoder('utf-8').decode(raw)), '') ?? 'body';
    } catch {
      // not JSON either: report the body
    }
    throw InvalidArgument.field(protoPath(schema, where), 'is not valid UTF-8');
  }
  const shape = scanJsonShape(text);
  if (shape.tooDeep) throw InvalidArgument.field('body', `is nested more than ${MAX_JSON_DEPTH} levels deep`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: { source?: string }) {
      if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source && /^-?[0-9]+$/.test(context.source)) {
        return context.source;
      }
      return value;
    } as (key: string, value: unknown) => unknown);
  } catch (error) {
    throw InvalidArgument.field('body', `is not valid JSON (${(error as Error).message.slice(0, 120)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw InvalidArgument.field('body', 'must be a JSON object');
  }
  if (shape.duplicateKey !== undefined) throw InvalidArgument.field(protoPath(schema, shape.duplicateKey), 'is given twice');
  return parsed as JsonObject;
}

const INTEGER_SCALARS: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64,
  ScalarType.INT32, ScalarType.UINT32, ScalarType.SINT32, ScalarType.FIXED32, ScalarType.SFIXED32,
]);
const isIntegerField = (field: DescField): boolean => field.fieldKind === 'scalar' && INTEGER_SCALARS.has(field.scalar);
/**
 * proto3 JSON takes an integer in a string only in JSON number syntax. protobuf-es hands the
 * string to BigInt()/Number(), which also take "0x10", " 5", "+5" and "0b1": refused here, so a
 * path id of 0x10 is not account 16.
 */
const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

function fieldByKey(message: DescMessage, key: string): DescField | undefined {
  return message.fields.find((f) => f.name === key || f.jsonName === key);
}

/**
 * Decodes a JSON object into a message, reporting every bad field by its proto (snake_case)
 * name: unknown keys, the same field under two names, and values of the wrong type or range.
 * @throws InvalidArgument
 */
export function decodeMessage<M extends DescMessage>(schema: M, json: JsonObject): MessageShape<M> {
  const violations: FieldViolation[] = [];
  const seen = new Map<DescField, string>();
  for (const [key, value] of Object.entries(json)) {
    const field = fieldByKey(schema, key);
    if (!field) {
      violations.push({ field: key, description: 'is not a field of this request' });
      continue;
    }
    const other = seen.get(field);
    if (other !== undefined) {
      violations.push({ field: field.name, description: `is given twice (as "${other}" and "${key}")` });
      continue;
    }
    seen.set(field, key);
    if (isIntegerField(field) && typeof value === 'string' && !JSON_NUMBER.test(value)) {
      violations.push({ field: field.name, description: describeProblem(field) });
      continue;
    }
    try {
      fromJson(schema, { [key]: value } as JsonObject);
    } catch {
      violations.push({ field: field.name, description: describeProblem(field) });
    }
  }
  if (violations.length > 0) throw new InvalidArgument(violations);
  try {
    return fromJson(schema, json);
  } catch (error) {
    throw InvalidArgument.field('body', (error as Error).message.replace(/^cannot decode [^:]*: /, ''));
  }
}

function queryValue(field: DescField, value: string): JsonValue {
  if (field.fieldKind === 'scalar' && field.scalar === ScalarType.BOOL) {
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw InvalidArgument.field(field.name, 'must be true or false');
  }
  return value;
}

/**
 * The request message of a route from path parameters, query string, JSON body and the
 * Idempotency-Key header.
 * @throws InvalidArgument, UnsupportedMediaType
 */
export function decodeHttpRequest<M extends DescMessage>(route: HttpRoute & { method: { input: M } }, parts: HttpRequestParts): MessageShape<M> {
  const input = route.method.input;
  const json: JsonObject = route.body === '*' ? parseJsonBody(parts.rawBody, parts.contentType, input) : {};
  if (route.body === '') {
    if (parts.rawBody.length > 0) throw InvalidArgument.field('body', `must be empty for ${route.verb.toUpperCase()} ${route.pathTemplate}`);
    for (const [key, raw] of Object.entries(parts.query)) {
      if (raw === undefined) continue;
      const field = route.queryFields.find((f) => f.name === key || f.jsonName === key);
      if (!field) throw InvalidArgument.field(key, 'is not a query parameter of this operation');
      if (Array.isArray(raw)) throw InvalidArgument.field(field.name, 'must be given once');
      if (fieldByKey(input, key) && Object.keys(json).some((k) => fieldByKey(input, k) === field)) {
        throw InvalidArgument.field(field.name, 'is given twice');
      }
      json[key] = queryValue(field, raw);
    }
  } else {
    const stray = Object.keys(parts.query).find((k) => parts.query[k] !== undefined);
    if (stray) throw InvalidArgument.field(stray, 'is not a query parameter of this operation (send it in the JSON body)');
  }
  for (const field of route.pathFields) {
    const inBody = Object.keys(json).find((k) => k === field.name || k === field.jsonName);
    if (inBody) throw InvalidArgument.field(field.name, 'comes from the URL path; do not send it in the body');
    json[field.name] = parts.params[field.name] ?? '';
  }
  if (route.idempotencyField) {
    const field = route.idempotencyField;
    const inBody = Object.keys(json).find((k) => k === field.name || k === field.jsonName);
    if (parts.idempotencyKey !== undefined) {
      if (inBody && json[inBody] !== parts.idempotencyKey) {
        throw InvalidArgument.field(field.name, 'differs from the Idempotency-Key header');
      }
      if (inBody) delete json[inBody];
      json[field.name] = parts.idempotencyKey;
    }
  }
  return decodeMessage(input, json);
}

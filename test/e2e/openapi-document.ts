// Requests built from the OpenAPI document the API serves, and answers checked against it: the
// contract test's tools. Values come from each schema (its enum, format, pattern, length and range
// bounds); only what must name something real (an account, a transfer, an emailed secret) is given.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';

export type JsonSchema = {
  $ref?: string;
  allOf?: JsonSchema[];
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  maxProperties?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
};
export type Parameter = { name: string; in: 'path' | 'query' | 'header' | 'cookie'; required: boolean; schema: JsonSchema };
type Response = { content?: Record<string, { schema: JsonSchema }> };
export type Operation = {
  operationId: string;
  parameters: Parameter[];
  requestBody?: { required: boolean; content: { 'application/json': { schema: JsonSchema } } };
  responses: Record<string, Response>;
};
export type OpenApiDocument = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, JsonSchema> };
};

/** Where the document is registered in Ajv, so that its `#/components/...` references resolve. */
const DOCUMENT_ID = 'https://bank.test/openapi.json';

/** Asks for a value generated from the field's schema, for a field the request need not carry. */
export const GENERATE = Symbol('generate');
export type Values = Record<string, unknown>;

/** The subset of ECMAScript patterns the document uses: classes, groups with |, quantifiers. */
function sampleRegex(pattern: string): string {
  let i = 0;
  const source = pattern.replace(/^\^/, '').replace(/\$$/, '');
  const readChar = (): string => {
    const c = source[i++] ?? '';
    if (c !== '\\') return c;
    const e = source[i++] ?? '';
    if (e === 'u') {
      const hex = source.slice(i, i + 4);
      i += 4;
      return String.fromCharCode(parseInt(hex, 16));
    }
    return e;
  };
  const readClass = (): (() => string) => {
    const negated = source[i] === '^';
    if (negated) i++;
    const ranges: [number, number][] = [];
    while (source[i] !== ']') {
      const from = readChar();
      if (source[i] === '-' && source[i + 1] !== ']') {
        i++;
        ranges.push([from.charCodeAt(0), readChar().charCodeAt(0)]);
      } else ranges.push([from.charCodeAt(0), from.charCodeAt(0)]);
    }
    i++;
    const inClass = (code: number) => ranges.some(([a, b]) => code >= a && code <= b);
    if (negated) {
      const allowed = [...'abcdefghijklmnopqrstuvwxyz0123456789'].filter((c) => !inClass(c.charCodeAt(0)));
      return () => allowed[randomInt(allowed.length)] ?? 'a';
    }
    const codes = ranges.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k));
    return () => String.fromCharCode(codes[randomInt(codes.length)] ?? 97);
  };
  const readSequence = (): (() => string) => {
    const alternatives: (() => string)[][] = [[]];
    while (i < source.length && source[i] !== ')') {
      if (source[i] === '|') {
        i++;
        alternatives.push([]);
        continue;
      }
      let atom: () => string;
      if (source[i] === '(') {
        i += source.startsWith('(?:', i) ? 3 : 1;
        atom = readSequence();
        i++; // ')'
      } else if (source[i] === '[') {
        i++;
        atom = readClass();
      } else {
        const c = readChar();
        atom = () => c;
      }
      let [min, max] = [1, 1];
      const quantifier = /^(?:\{(\d+)(?:,(\d*))?\}|[*+?])/.exec(source.slice(i));
      if (quantifier) {
        i += quantifier[0].length;
        if (quantifier[0] === '*') [min, max] = [0, 8];
        else if (quantifier[0] === '+') [min, max] = [1, 8];
        else if (quantifier[0] === '?') [min, max] = [0, 1];
        else {
          min = Number(quantifier[1]);
          max = quantifier[2] === undefined ? min : quantifier[2] === '' ? min + 8 : Number(quantifier[2]);
        }
      }
      // Short values: a few repetitions past the minimum are enough to be "any value".
      const count = () => min + randomInt(Math.min(max, min + 8) - min + 1);
      (alternatives.at(-1) as (() => string)[]).push(() => Array.from({ length: count() }, atom).join(''));
    }
    return () => (alternatives[randomInt(alternatives.length)] ?? []).map((part) => part()).join('');
  };
  return readSequence()();
}

/** Checks answers and built requests against the document's schemas (JSON Schema 2020-12, as OpenAPI 3.1). */
export class DocumentSchemas {
  readonly doc: OpenApiDocument;
  readonly #ajv: Ajv2020;
  readonly #compiled = new Map<JsonSchema, ReturnType<Ajv2020['compile']>>();

  constructor(doc: OpenApiDocument) {
    this.doc = doc;
    this.#ajv = new Ajv2020({ strict: false, allErrors: true });
    (addFormatsPlugin as unknown as (ajv: Ajv2020) => void)(this.#ajv);
    // Protobuf's names for JSON number and string encodings: nothing more to check than the type and pattern.
    for (const format of ['int32', 'uint32', 'int64', 'uint64', 'byte', 'binary']) this.#ajv.addFormat(format, true);
    this.#ajv.addSchema({ $id: DOCUMENT_ID, components: doc.components });
  }

  /** The schema behind a $ref or an allOf of one. */
  resolve(schema: JsonSchema): JsonSchema {
    if (schema.$ref) return this.resolve(this.doc.components.schemas[schema.$ref.replace('#/components/schemas/', '')] ?? {});
    if (schema.allOf?.length === 1) return { ...this.resolve(schema.allOf[0] ?? {}), ...schema, allOf: undefined };
    return schema;
  }

  /** Ajv's complaints about `value` against `schema`, or [] when it matches. */
  errors(schema: JsonSchema, value: unknown): string[] {
    let validate = this.#compiled.get(schema);
    if (!validate) {
      // A schema taken out of the document keeps pointing into it.
      const rooted = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', `"${DOCUMENT_ID}#/components/`)) as object;
      validate = this.#ajv.compile(rooted);
      this.#compiled.set(schema, validate);
    }
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  }

  /** A valid value of the schema: its first allowed value, or one built from its format, pattern and bounds. */
  sample(given: JsonSchema): unknown {
    const schema = this.resolve(given);
    if (schema.enum) return schema.enum.find((v) => v !== '' && !/_UNSPECIFIED$/.test(String(v))) ?? schema.enum[0];
    switch (schema.type) {
      case 'integer':
      case 'number':
        return Math.max(schema.minimum ?? 1, Math.min(schema.maximum ?? 100, 1));
      case 'boolean':
        return true;
      case 'array':
        return [];
      case 'object': {
        const object: Record<string, unknown> = {};
        for (const name of schema.required ?? []) object[name] = this.sample(schema.properties?.[name] ?? {});
        if (!schema.properties && typeof schema.additionalProperties === 'object') {
          // A map: one entry.
          object[String(this.sample(schema.propertyNames ?? { type: 'string', maxLength: 12 }))] = this.sample(schema.additionalProperties);
        }
        return object;
      }
      default:
        return this.#sampleString(schema);
    }
  }

  #sampleString(schema: JsonSchema): string {
    if (schema.format === 'email') return `u${randomBytes(5).toString('hex')}@example.test`;
    if (schema.format === 'uuid') return randomUUID();
    if (schema.format === 'date-time') return new Date().toISOString();
    const min = schema.minLength ?? 0;
    const max = schema.maxLength ?? Math.max(min, 24);
    if (schema.pattern) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const value = sampleRegex(schema.pattern);
        if ([...value].length >= min && [...value].length <= max && (min > 0 || value !== '' || attempt > 3)) return value;
      }
      throw new Error(`no sample of /${schema.pattern}/ within ${min}..${max} characters`);
    }
    // Random letters and digits: never a common password, never empty unless it may be.
    const length = Math.min(max, Math.max(min, 16));
    return randomBytes(length).toString('base64url').slice(0, length).replace(/[-_]/g, 'x');
  }
}

/** One request built from an operation of the document: its path, query, headers and JSON body. */
export type BuiltRequest = { method: string; path: string; headers: Record<string, string>; body: Record<string, unknown> | undefined };

/**
 * Builds a request of `operationId`: every required parameter and body field, from `values` when
 * given there (by parameter name or JSON field name; GENERATE for one generated from its schema),
 * otherwise generated; optional ones only when `values` names them; `omit` left out.
 */
export function buildRequest(schemas: DocumentSchemas, operationId: string, values: Values = {}, omit?: string): BuiltRequest & { operation: Operation } {
  for (const [template, operations] of Object.entries(schemas.doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (operation.operationId !== operationId) continue;
      const valueOf = (name: string, schema: JsonSchema): unknown => (values[name] === undefined || values[name] === GENERATE ? schemas.sample(schema) : values[name]);
      let path = template;
      const query = new URLSearchParams();
      const headers: Record<string, string> = {};
      for (const parameter of operation.parameters) {
        if (parameter.name === omit || (!parameter.required && values[parameter.name] === undefined)) continue;
        const value = String(valueOf(parameter.name, parameter.schema));
        if (parameter.in === 'path') path = path.replace(`{${parameter.name}}`, encodeURIComponent(value));
        else if (parameter.in === 'query') query.set(parameter.name, value);
        else if (parameter.in === 'cookie') headers.cookie = [headers.cookie, `${parameter.name}=${value}`].filter(Boolean).join('; ');
        else headers[parameter.name] = value;
      }
      let body: Record<string, unknown> | undefined;
      const bodySchema = operation.requestBody?.content['application/json'].schema;
      if (bodySchema) {
        const resolved = schemas.resolve(bodySchema);
        body = {};
        for (const [name, property] of Object.entries(resolved.properties ?? {})) {
          if (name !== omit && (resolved.required?.includes(name) || values[name] !== undefined)) body[name] = valueOf(name, property);
        }
      }
      const search = query.toString();
      return { operation, method: method.toUpperCase(), path: search ? `${path}?${search}` : path, headers, body };
    }
  }
  throw new Error(`no operation ${operationId} in the document`);
}

/**
 * What is wrong with an answer by the document: a status it does not declare (nor `default`),
 * a content type it does not list, or a body that does not match the declared schema.
 */
export function answerProblems(schemas: DocumentSchemas, operation: Operation, status: number, contentType: string, body: string): string[] {
  // Every 4xx an operation answers is declared; `default` stands for the 5xx it does not list.
  const response = operation.responses[String(status)] ?? (status >= 500 ? operation.responses.default : undefined);
  if (!response) return [`status ${status} is not declared`];
  const content = response?.content ?? {};
  const mediaType = contentType.split(';')[0]?.trim() ?? '';
  const declared = content[mediaType] ?? content['*/*'];
  if (!declared) return [`content type ${contentType} is not declared for ${status} (${Object.keys(content).join(', ')})`];
  if (!mediaType.endsWith('json')) return [];
  return schemas.errors(declared.schema, JSON.parse(body) as unknown);
}

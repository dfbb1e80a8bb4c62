#!/usr/bin/env node
// A buf/protoc plugin that reads the google.api.http annotations of the contract and emits
//  - bank/v1/rest_client.ts: a typed, fetch-based client for the REST gateway (the role
//    grpc-gateway-ts plays for Go gateways), with bearer token and Idempotency-Key handling;
//  - openapi.json: the OpenAPI 3.1 document the gateway serves at /openapi.json, with the
//    proto comments as descriptions (the runtime descriptors carry no comments).
// Routes are read with the same function the gateway uses (shared/src/edge/http-rules.ts), so
// the client, the document and the server cannot disagree about paths.
import {
  ScalarType,
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescMessage,
  type DescService,
} from '@bufbuild/protobuf';
import { createEcmaScriptPlugin, getComments, runNodeJs, type Schema } from '@bufbuild/protoplugin';
import { httpRoutes, type HttpRoute } from '../../shared/src/edge/http-rules.ts';

const PLUGIN_NAME = 'protoc-gen-bank-rest';

function findExtension(schema: Schema, typeName: string): DescExtension | undefined {
  for (const file of schema.allFiles) {
    const found = file.extensions.find((e) => e.typeName === typeName);
    if (found) return found;
  }
  return undefined;
}

function routesOf(schema: Schema): { services: DescService[]; routes: HttpRoute[] } {
  const http = findExtension(schema, 'google.api.http');
  if (!http) throw new Error('google.api.http is not imported by the contract');
  const services = schema.files.flatMap((f) => f.services);
  const routes = httpRoutes(services, {
    http,
    successStatus: findExtension(schema, 'bank.v1.http_success_status'),
    allowAnonymous: findExtension(schema, 'bank.v1.allow_anonymous'),
  });
  return { services, routes };
}

const lowerFirst = (s: string) => s.slice(0, 1).toLowerCase() + s.slice(1);
const docOf = (desc: DescMessage | DescField | DescEnum | DescService | HttpRoute['method']) =>
  (getComments(desc).leading ?? '').trim().replace(/\n /g, '\n');

// ---------------------------------------------------------------------------------------------
// The typed client.

const RUNTIME = `
/** Where and how the client talks to the gateway. */
export type RestClientOptions = {
  /** Base URL of the gateway, e.g. \`http://localhost:8080\`. */
  baseUrl: string;
  /** Access token sent as \`authorization: Bearer <token>\`. */
  accessToken?: string | undefined;
  /** Headers added to every request. */
  headers?: Record<string, string> | undefined;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch | undefined;
};

/** Per-call options. */
export type CallOptions = {
  /** Overrides the client's access token for this call. */
  accessToken?: string | undefined;
  /** Sent as the Idempotency-Key header (else the request's idempotencyKey field is used). */
  idempotencyKey?: string | undefined;
  headers?: Record<string, string> | undefined;
  signal?: AbortSignal | undefined;
};

/** One offending input field of a 4xx answer. */
export type FieldViolation = { field: string; description: string };

/** A non-2xx answer: the gateway's application/problem+json body. */
export class RestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldViolation[];
  readonly requestId: string | undefined;
  constructor(status: number, problem: Record<string, unknown>) {
    const detail = typeof problem.detail === "string" ? problem.detail : "";
    super(\`HTTP \${status} \${String(problem.code ?? "")}: \${detail}\`);
    this.name = "RestError";
    this.status = status;
    this.code = typeof problem.code === "string" ? problem.code : "UNKNOWN";
    this.title = typeof problem.title === "string" ? problem.title : "";
    this.detail = detail;
    this.errors = Array.isArray(problem.errors) ? (problem.errors as FieldViolation[]) : [];
    this.requestId = typeof problem.requestId === "string" ? problem.requestId : undefined;
  }
}

type Route = {
  verb: string;
  path: string;
  /** Proto names of the fields bound from the path. */
  pathFields: readonly string[];
  body: "*" | "";
  /** JSON name of the request field sent as the Idempotency-Key header. */
  idempotencyField?: string;
};

class Transport {
  readonly options: RestClientOptions;
  constructor(options: RestClientOptions) {
    this.options = options;
  }

  async call<I extends DescMessage, O extends DescMessage>(
    route: Route,
    input: I,
    output: O,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): Promise<MessageShape<O>> {
    const message = create(input, request);
    const json = toJson(input, message) as Record<string, unknown>;
    const headers: Record<string, string> = { accept: "application/json", ...this.options.headers, ...options.headers };
    const token = options.accessToken ?? this.options.accessToken;
    if (token) headers.authorization = \`Bearer \${token}\`;
    let path = route.path;
    for (const name of route.pathFields) {
      const field = input.fields.find((f) => f.name === name)!;
      path = path.replace(\`{\${name}}\`, encodeURIComponent(String((message as Record<string, unknown>)[field.localName])));
      delete json[field.jsonName];
    }
    if (route.idempotencyField) {
      const key = options.idempotencyKey ?? json[route.idempotencyField];
      delete json[route.idempotencyField];
      if (typeof key === "string" && key !== "") headers["idempotency-key"] = key;
    }
    let body: string | undefined;
    if (route.body === "*") {
      headers["content-type"] = "application/json";
      body = JSON.stringify(json);
    } else {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(json)) {
        const field = input.fields.find((f) => f.jsonName === key);
        query.append(field ? field.name : key, typeof value === "string" ? value : JSON.stringify(value));
      }
      const text = query.toString();
      if (text) path += \`?\${text}\`;
    }
    const doFetch = this.options.fetch ?? globalThis.fetch;
    const response = await doFetch(this.options.baseUrl.replace(/\\/+$/, "") + path, {
      method: route.verb,
      headers,
      body,
      signal: options.signal,
    });
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!response.ok) {
      const problem = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : { detail: text };
      throw new RestError(response.status, problem);
    }
    return fromJson(output, (parsed ?? {}) as JsonValue, { ignoreUnknownFields: true });
  }
}
`;

function generateClient(schema: Schema, routes: HttpRoute[], services: DescService[]): void {
  const f = schema.generateFile('bank/v1/rest_client.ts');
  f.print('// @generated by ', PLUGIN_NAME, ' from the google.api.http annotations. DO NOT EDIT.');
  f.print('// Regenerate with `npm run proto:generate`.');
  f.print('/* eslint-disable */');
  f.print();
  const create = f.import('create', '@bufbuild/protobuf');
  const fromJson = f.import('fromJson', '@bufbuild/protobuf');
  const toJson = f.import('toJson', '@bufbuild/protobuf');
  const descMessage = f.import('DescMessage', '@bufbuild/protobuf', true);
  const initShape = f.import('MessageInitShape', '@bufbuild/protobuf', true);
  const shape = f.import('MessageShape', '@bufbuild/protobuf', true);
  const jsonValue = f.import('JsonValue', '@bufbuild/protobuf', true);
  // Reference the imports once so that the printer emits them; the runtime text uses the names.
  f.print('type _Imports = [typeof ', create, ', typeof ', fromJson, ', typeof ', toJson, ', ', descMessage, ', ', initShape, '<', descMessage, '>, ', shape, '<', descMessage, '>, ', jsonValue, '];');
  f.print(RUNTIME);
  const clientProps: { prop: string; className: string }[] = [];
  for (const service of services) {
    const serviceRoutes = routes.filter((r) => r.method.parent === service);
    if (serviceRoutes.length === 0) continue;
    const className = `${service.name}Client`;
    clientProps.push({ prop: lowerFirst(service.name.replace(/Service$/, '')), className });
    f.print(f.jsDoc(`REST client for ${service.typeName}.\n\n${docOf(service)}`));
    f.print(f.export('class', className), ' {');
    f.print('  readonly #transport: Transport;');
    f.print('  constructor(transport: Transport) {');
    f.print('    this.#transport = transport;');
    f.print('  }');
    for (const route of serviceRoutes) {
      const m = route.method;
      const spec = {
        verb: route.verb.toUpperCase(),
        path: route.pathTemplate,
        pathFields: route.pathFields.map((p) => p.name),
        body: route.body,
        ...(route.idempotencyField ? { idempotencyField: route.idempotencyField.jsonName } : {}),
      };
      f.print();
      f.print(f.jsDoc(`${docOf(m)}\n\n${route.verb.toUpperCase()} ${route.pathTemplate}`, '  '));
      f.print('  ', m.localName, '(request: ', initShape, '<typeof ', f.importSchema(m.input), '>, options?: CallOptions): Promise<', f.importShape(m.output), '> {');
      f.print('    return this.#transport.call(', JSON.stringify(spec), ', ', f.importSchema(m.input), ', ', f.importSchema(m.output), ', request, options);');
      f.print('  }');
    }
    f.print('}');
    f.print();
  }
  f.print(f.jsDoc('Typed client for every REST operation of the bank API.'));
  f.print(f.export('class', 'BankRestClient'), ' {');
  f.print('  readonly options: RestClientOptions;');
  for (const { prop, className } of clientProps) f.print('  readonly ', prop, ': ', className, ';');
  f.print('  constructor(options: RestClientOptions) {');
  f.print('    this.options = options;');
  f.print('    const transport = new Transport(options);');
  for (const { prop, className } of clientProps) f.print('    this.', prop, ' = new ', className, '(transport);');
  f.print('  }');
  f.print();
  f.print('  /** The same client, sending this access token. */');
  f.print('  withAccessToken(accessToken: string | undefined): BankRestClient {');
  f.print('    return new BankRestClient({ ...this.options, accessToken });');
  f.print('  }');
  f.print('}');
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document.

type JsonSchema = Record<string, unknown>;

const WELL_KNOWN: Record<string, JsonSchema> = {
  'google.protobuf.Timestamp': { type: 'string', format: 'date-time', description: 'RFC 3339 timestamp.' },
  'google.protobuf.Empty': { type: 'object', additionalProperties: false },
};

function scalarSchema(type: ScalarType): JsonSchema {
  switch (type) {
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: 'string', format: 'int64', pattern: '^-?[0-9]+$' };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: 'string', format: 'uint64', pattern: '^[0-9]+$' };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: 'integer', format: 'int32' };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: 'integer', format: 'uint32' };
    case ScalarType.BOOL:
      return { type: 'boolean' };
    case ScalarType.BYTES:
      return { type: 'string', format: 'byte' };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: 'number' };
    default:
      return { type: 'string' };
  }
}

function generateOpenApi(schema: Schema, routes: HttpRoute[]): void {
  const components: Record<string, JsonSchema> = {};
  const ref = (desc: DescMessage | DescEnum): JsonSchema => {
    const wellKnown = desc.kind === 'message' ? WELL_KNOWN[desc.typeName] : undefined;
    if (wellKnown) return wellKnown;
    if (!components[desc.typeName]) {
      components[desc.typeName] = {};
      components[desc.typeName] = desc.kind === 'enum' ? enumSchema(desc) : messageSchema(desc);
    }
    return { $ref: `#/components/schemas/${desc.typeName}` };
  };
  const enumSchema = (desc: DescEnum): JsonSchema => ({
    type: 'string',
    enum: desc.values.map((v) => v.name),
    description: docOf(desc) || undefined,
  });
  const fieldSchema = (field: DescField): JsonSchema => {
    let item: JsonSchema;
    switch (field.fieldKind) {
      case 'scalar':
        item = scalarSchema(field.scalar);
        break;
      case 'enum':
        item = ref(field.enum);
        break;
      case 'message':
        item = ref(field.message);
        break;
      case 'list':
        return {
          type: 'array',
          items: field.listKind === 'scalar' ? scalarSchema(field.scalar) : ref(field.listKind === 'enum' ? field.enum : field.message),
          description: docOf(field) || undefined,
        };
      case 'map':
        return { type: 'object', description: docOf(field) || undefined };
    }
    const description = docOf(field);
    return description ? ('$ref' in item ? { allOf: [item], description } : { ...item, description }) : item;
  };
  const messageSchema = (desc: DescMessage, omit: readonly DescField[] = []): JsonSchema => ({
    type: 'object',
    additionalProperties: false,
    description: docOf(desc) || undefined,
    properties: Object.fromEntries(desc.fields.filter((f) => !omit.includes(f)).map((f) => [f.jsonName, fieldSchema(f)])),
  });

  const problem = {
    description: 'An error, as application/problem+json (RFC 9457) with a stable `code`.',
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const m = route.method;
    const parameters: JsonSchema[] = [
      ...route.pathFields.map((f) => ({ name: f.name, in: 'path', required: true, schema: fieldSchema(f) })),
      ...route.queryFields.map((f) => ({ name: f.name, in: 'query', required: false, schema: fieldSchema(f) })),
    ];
    if (route.idempotencyField) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: true,
        description: docOf(route.idempotencyField),
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      });
    }
    const operation: Record<string, unknown> = {
      operationId: `${m.parent.name}_${m.name}`,
      tags: [m.parent.name],
      summary: docOf(m).split('\n')[0],
      description: docOf(m),
      parameters,
      responses: {
        [String(route.successStatus)]: { description: 'OK', content: { 'application/json': { schema: ref(m.output) } } },
        default: problem,
      },
      ...(route.allowAnonymous ? { security: [] } : {}),
    };
    if (route.body === '*') {
      const omit = [...route.pathFields, ...(route.idempotencyField ? [route.idempotencyField] : [])];
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: messageSchema(m.input, omit) } },
      };
    }
    const path = route.pathTemplate;
    paths[path] ??= {};
    paths[path][route.verb] = operation;
  }
  components.Problem = {
    type: 'object',
    properties: {
      type: { type: 'string' },
      title: { type: 'string' },
      status: { type: 'integer' },
      code: { type: 'string', description: 'Stable error code, e.g. INVALID_ARGUMENT, INSUFFICIENT_FUNDS.' },
      detail: { type: 'string' },
      errors: {
        type: 'array',
        items: { type: 'object', properties: { field: { type: 'string' }, description: { type: 'string' } } },
      },
      requestId: { type: 'string' },
    },
  };
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'Bank API',
      version: 'v1',
      description:
        'Generated from proto/bank/v1 by protoc-gen-bank-rest. JSON is canonical proto3 JSON: camelCase fields, int64 as decimal strings.',
    },
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'PASETO v4.public' } },
    },
    security: [{ bearerAuth: [] }],
  };
  const f = schema.generateFile('openapi.json');
  f.print(JSON.stringify(document, (_key, value: unknown) => (value === '' && _key === 'description' ? undefined : value), 2));
}

const plugin = createEcmaScriptPlugin({
  name: PLUGIN_NAME,
  version: 'v1',
  generateTs(schema: Schema) {
    const { services, routes } = routesOf(schema);
    generateClient(schema, routes, services);
    generateOpenApi(schema, routes);
    const readme = schema.generateFile('README.md');
    readme.print('# Generated code: do not edit');
    readme.print();
    readme.print('Everything in this folder is generated from `proto/bank/v1/*.proto` by `npm run proto:generate`');
    readme.print('(buf with protoc-gen-es and proto/plugins/protoc-gen-bank-rest.ts). `npm run proto:check`');
    readme.print('and the test proto/scripts/generate.test.ts fail when it is stale.');
  },
});

runNodeJs(plugin);

// The runtime of the generated REST client (proto/gen/bank/v1/rest_client.ts). What does not vary
// per RPC lives here, linted and type-checked like any other module; the generator
// (edge/src/codegen/protoc-gen-bank-rest.ts) emits only one typed method per RPC with its route,
// the way connect-es keeps its transport in @connectrpc/connect and generates only descriptors.
import {
  create,
  fromJson,
  toJson,
  type DescMessage,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';

/** The message of an answer that is a file, not JSON (the gateway writes its bytes with their content type). */
const HTTP_BODY_TYPE = 'google.api.HttpBody';

/** Where and how the client talks to the gateway. */
export type RestClientOptions = {
  /** Base URL of the gateway, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** Access token sent as `authorization: Bearer <token>`. */
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

/** The members every problem body has; the others are extensions. */
const PROBLEM_MEMBERS: ReadonlySet<string> = new Set(['type', 'title', 'status', 'code', 'detail', 'errors', 'requestId', 'instance']);

/** A non-2xx answer: the gateway's application/problem+json body. */
export class RestError extends Error {
  readonly status: number;
  /** The stable error code, e.g. `INSUFFICIENT_FUNDS`; `UNKNOWN` when the body carries none. */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldViolation[];
  readonly requestId: string | undefined;
  /**
   * The problem's other string members (RFC 9457 extension members), the facts a code carries:
   * e.g. `limit` and `remaining` (minor units, a decimal string) of LIMIT_EXCEEDED.
   */
  readonly extensions: Readonly<Record<string, string>>;
  constructor(status: number, problem: Record<string, unknown>) {
    const detail = typeof problem.detail === 'string' ? problem.detail : '';
    const code = typeof problem.code === 'string' ? problem.code : 'UNKNOWN';
    super(`HTTP ${status} ${code}: ${detail}`);
    this.name = 'RestError';
    this.status = status;
    this.code = code;
    this.title = typeof problem.title === 'string' ? problem.title : '';
    this.detail = detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors.filter(isFieldViolation) : [];
    this.requestId = typeof problem.requestId === 'string' ? problem.requestId : undefined;
    this.extensions = Object.fromEntries(
      Object.entries(problem).filter((entry): entry is [string, string] => !PROBLEM_MEMBERS.has(entry[0]) && typeof entry[1] === 'string'),
    );
  }
}

function isFieldViolation(value: unknown): value is FieldViolation {
  if (typeof value !== 'object' || value === null) return false;
  const { field, description } = value as Record<string, unknown>;
  return typeof field === 'string' && typeof description === 'string';
}

/** How one RPC maps onto HTTP: what the generator reads from its google.api.http rule. */
export type RestRoute = {
  verb: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path template with simple `{field}` variables, e.g. `/v1/accounts/{account_id}`. */
  path: string;
  /** Proto names of the fields bound from the path. */
  pathFields: readonly string[];
  /** `*`: the remaining fields are the JSON body; empty: they go in the query string. */
  body: '*' | '';
  /** JSON name of the request field sent as the Idempotency-Key header. */
  idempotencyField?: string;
};

/** What goes on the wire for one call, before the base URL is put in front of `path`. */
export type RestRequest = {
  method: RestRoute['verb'];
  /** Path with the variables filled in, and the query string for a call without a body. */
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
};

/**
 * Turns a request message into method, path, headers and body as the gateway reads them:
 * canonical proto3 JSON, path variables percent-encoded, the other fields of a body-less call
 * in the query string under their proto names, the idempotency key as a header.
 *
 * @throws Error when a path variable is empty, `.` or `..`: the URL would reach another route.
 */
export function encodeRestRequest<I extends DescMessage>(
  route: RestRoute,
  input: I,
  request: MessageInitShape<I>,
  clientOptions: Pick<RestClientOptions, 'accessToken' | 'headers'>,
  options: CallOptions = {},
): RestRequest {
  const message = create(input, request);
  // toJson leaves out fields at their default value, so unset fields never reach the query string.
  const json = toJson(input, message) as Record<string, JsonValue>;
  const headers: Record<string, string> = { accept: 'application/json', ...clientOptions.headers, ...options.headers };
  const token = options.accessToken ?? clientOptions.accessToken;
  if (token) headers.authorization = `Bearer ${token}`;

  let path = route.path;
  for (const name of route.pathFields) {
    const field = input.fields.find((f) => f.name === name);
    if (!field) throw new Error(`${input.typeName} has no field ${name} for the path ${route.path}`);
    const value = String((message as unknown as Record<string, unknown>)[field.localName]);
    // URL parsing resolves dot segments (also when percent-encoded), and an empty segment
    // changes the path too, so such a value would silently call a different route.
    if (value === '' || value === '.' || value === '..') {
      throw new Error(`${input.typeName}.${name} is ${JSON.stringify(value)}, which cannot be sent in the path ${route.path}`);
    }
    path = path.replace(`{${name}}`, () => encodeURIComponent(value));
    delete json[field.jsonName];
  }

  if (route.idempotencyField) {
    const key = options.idempotencyKey ?? json[route.idempotencyField];
    delete json[route.idempotencyField];
    if (typeof key === 'string' && key !== '') headers['idempotency-key'] = key;
  }

  let body: string | undefined;
  if (route.body === '*') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(json)) {
      const field = input.fields.find((f) => f.jsonName === key);
      query.append(field ? field.name : key, typeof value === 'string' ? value : JSON.stringify(value));
    }
    const text = query.toString();
    if (text) path += `?${text}`;
  }
  return { method: route.verb, path, headers, body };
}

/**
 * Sends requests for the generated service clients: one per client, shared by its services.
 * Not meant to be called directly; use `BankRestClient`.
 */
export class RestTransport {
  readonly options: RestClientOptions;
  constructor(options: RestClientOptions) {
    this.options = options;
  }

  /**
   * Calls one RPC over HTTP and reads its answer leniently (unknown fields are ignored, so an
   * older client keeps working against a newer gateway). A google.api.HttpBody answer is read as
   * its bytes and Content-Type (see `download`).
   *
   * @throws RestError for a non-2xx answer, with the problem+json body's fields when there is
   *   one, else its text as `detail` and `UNKNOWN` as `code`.
   * @throws Error for a 2xx answer whose body is not JSON (HttpBody aside), and whatever fetch throws (network
   *   failures, an aborted signal).
   */
  async call<I extends DescMessage, O extends DescMessage>(
    route: RestRoute,
    input: I,
    output: O,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): Promise<MessageShape<O>> {
    const { method, path, response } = await this.#send(route, input, request, options);
    if (!response.ok) throw await restErrorOf(response);
    if (output.typeName === HTTP_BODY_TYPE) return readFile(output, response);
    const { parsed, isJson } = parseJson(await response.text());
    if (!isJson) throw new Error(`${method} ${path}: HTTP ${response.status} answered a body that is not JSON`);
    // An empty 2xx body (e.g. 204) is the message with every field at its default.
    return fromJson(output, parsed ?? {}, { ignoreUnknownFields: true });
  }

  /**
   * Calls an RPC that answers google.api.HttpBody, a file (GetStatement): resolves with its bytes
   * (`data`), its `contentType` and the `filename` the gateway suggests in Content-Disposition.
   *
   * @throws RestError for a non-2xx answer, as `call` does; Error when `output` is not
   *   google.api.HttpBody, and whatever fetch throws.
   */
  async download<I extends DescMessage, O extends DescMessage>(
    route: RestRoute,
    input: I,
    output: O,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): Promise<MessageShape<O> & RestFile> {
    if (output.typeName !== HTTP_BODY_TYPE) throw new Error(`${output.typeName} is not ${HTTP_BODY_TYPE}: call it with call()`);
    // Any media type: the file is whatever the request asked for (format=pdf...); errors stay problem+json.
    const { response } = await this.#send(route, input, request, { ...options, headers: { accept: '*/*', ...options.headers } });
    if (!response.ok) throw await restErrorOf(response);
    return readFile(output, response);
  }

  async #send<I extends DescMessage>(route: RestRoute, input: I, request: MessageInitShape<I>, options: CallOptions) {
    const { method, path, headers, body } = encodeRestRequest(route, input, request, this.options, options);
    const doFetch = this.options.fetch ?? globalThis.fetch;
    const response = await doFetch(this.options.baseUrl.replace(/\/+$/, '') + path, {
      method,
      headers,
      body,
      signal: options.signal,
    });
    return { method, path, response };
  }
}

function parseJson(text: string): { parsed: JsonValue | undefined; isJson: boolean } {
  if (!text) return { parsed: undefined, isJson: true };
  try {
    return { parsed: JSON.parse(text) as JsonValue, isJson: true };
  } catch {
    return { parsed: undefined, isJson: false };
  }
}

/** A non-2xx answer as a RestError: its problem+json body, or (a proxy's HTML or plain text) the text as detail. */
async function restErrorOf(response: Response): Promise<RestError> {
  const text = await response.text();
  const { parsed, isJson } = parseJson(text);
  const problem = isJson && typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : { detail: text };
  return new RestError(response.status, problem);
}

/** What a file answer carries besides google.api.HttpBody's `contentType` and `data`. */
export type RestFile = {
  /** The name from the answer's Content-Disposition (`statement-42-2026-11-01-2026-12-01.pdf`); undefined without one. */
  filename: string | undefined;
};

/** A google.api.HttpBody answer: the bytes themselves, their Content-Type, the suggested file name. */
async function readFile<O extends DescMessage>(output: O, response: Response): Promise<MessageShape<O> & RestFile> {
  const data = new Uint8Array(await response.arrayBuffer());
  const message = create(output, { contentType: response.headers.get('content-type') ?? '', data } as unknown as MessageInitShape<O>);
  return Object.assign(message, { filename: contentDispositionFilename(response.headers.get('content-disposition')) });
}

/**
 * The file name of a Content-Disposition header (RFC 6266): `filename*=UTF-8''...` (percent-encoded)
 * when present, else `filename="..."` or a bare token; undefined when there is none. Only the last
 * path segment is kept, so a hostile name cannot point outside the folder a caller saves into.
 */
export function contentDispositionFilename(header: string | null): string | undefined {
  if (!header) return undefined;
  const extended = /(?:^|;)\s*filename\*\s*=\s*utf-8'[^']*'([^;\s]+)/i.exec(header);
  let name: string | undefined;
  if (extended?.[1]) {
    try {
      name = decodeURIComponent(extended[1]);
    } catch {
      name = undefined;
    }
  }
  if (name === undefined) {
    const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
    name = plain?.[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain?.[2];
  }
  const base = name?.split(/[\\/]/).pop();
  return base && base !== '.' && base !== '..' ? base : undefined;
}

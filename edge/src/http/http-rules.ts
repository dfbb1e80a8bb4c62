import { getOption, hasOption, type DescExtension, type DescField, type DescMethod, type DescService } from '@bufbuild/protobuf';

export type HttpVerb = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One REST operation, read from a method's `google.api.http` annotation. */
export type HttpRoute = {
  method: DescMethod;
  verb: HttpVerb;
  /** The annotation's template, e.g. `/v1/accounts/{account_id}/deposits`. */
  pathTemplate: string;
  /** Request fields bound from the path, in template order. */
  pathFields: DescField[];
  /** `*` (the whole request is the JSON body, less path fields) or `''` (no body). */
  body: '*' | '';
  /** Fields read from the query string (when there is no body). */
  queryFields: DescField[];
  /** The request's `idempotency_key` field, filled from the Idempotency-Key header over HTTP. */
  idempotencyField: DescField | undefined;
  successStatus: number;
  allowAnonymous: boolean;
};

/** The extensions a route is read from. Passed in so that code generators can use this too. */
export type RouteExtensions = {
  http: DescExtension;
  successStatus?: DescExtension | undefined;
  allowAnonymous?: DescExtension | undefined;
};

const VERBS: readonly HttpVerb[] = ['get', 'post', 'put', 'patch', 'delete'];
const PATH_VARIABLE = /\{([a-z][a-z0-9_]*)\}/g;

export const IDEMPOTENCY_FIELD = 'idempotency_key';

/**
 * Every annotated method of the services as a route. Throws on annotations this gateway does not
 * implement (custom verbs, `{name=pattern}` variables, nested field paths, body naming one field),
 * so a contract change that needs them fails at start-up and in the contract test, not at run time.
 */
export function httpRoutes(services: readonly DescService[], extensions: RouteExtensions): HttpRoute[] {
  const routes: HttpRoute[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, extensions.http)) continue;
      const rule = getOption(method, extensions.http) as unknown as {
        pattern: { case: string | undefined; value?: unknown };
        body: string;
      };
      const where = `${service.typeName}.${method.name}`;
      const verb = rule.pattern.case as HttpVerb | undefined;
      if (!verb || !VERBS.includes(verb)) throw new Error(`${where}: unsupported google.api.http pattern "${rule.pattern.case ?? ''}"`);
      const pathTemplate = String(rule.pattern.value);
      if (/[{][^}]*[=.]/.test(pathTemplate)) throw new Error(`${where}: only simple {field} path variables are supported`);
      if (rule.body !== '*' && rule.body !== '') throw new Error(`${where}: body must be "*" or empty`);
      const fieldByName = (name: string): DescField => {
        const field = method.input.fields.find((f) => f.name === name);
        if (!field) throw new Error(`${where}: path variable {${name}} is not a field of ${method.input.typeName}`);
        if (field.fieldKind !== 'scalar') throw new Error(`${where}: path variable {${name}} must be a scalar field`);
        return field;
      };
      const pathFields = [...pathTemplate.matchAll(PATH_VARIABLE)].map((m) => fieldByName(m[1] ?? ''));
      const idempotencyField = method.input.fields.find((f) => f.name === IDEMPOTENCY_FIELD);
      const queryFields =
        rule.body === '*' ? [] : method.input.fields.filter((f) => !pathFields.includes(f) && f !== idempotencyField);
      routes.push({
        method,
        verb,
        pathTemplate,
        pathFields,
        body: rule.body,
        queryFields,
        idempotencyField,
        successStatus: extensions.successStatus && hasOption(method, extensions.successStatus)
          ? Number(getOption(method, extensions.successStatus))
          : 200,
        allowAnonymous: extensions.allowAnonymous ? getOption(method, extensions.allowAnonymous) === true : false,
      });
    }
  }
  return routes;
}

/** `/v1/accounts/{account_id}` -> `/v1/accounts/:account_id` (the router's syntax). */
export function routerPath(pathTemplate: string): string {
  return pathTemplate.replace(PATH_VARIABLE, ':$1');
}

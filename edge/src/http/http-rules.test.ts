import { describe, expect, it } from '@jest/globals';
import { create, createFileRegistry, setExtension } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, MethodOptionsSchema, file_google_protobuf_descriptor } from '@bufbuild/protobuf/wkt';
import { file_google_api_annotations, http } from '@bank/proto/google/api/annotations_pb';
import { file_google_api_http, HttpRuleSchema } from '@bank/proto/google/api/http_pb';
import { file_bank_v1_options, allow_anonymous, http_success_status } from '@bank/proto/bank/v1/options_pb';
import { httpRoutes, routerPath } from './http-rules.ts';

/** A contract built at run time: one service whose methods carry the given http rules. */
function serviceWith(rules: { name: string; rule?: Parameters<typeof create<typeof HttpRuleSchema>>[1]; status?: number; anonymous?: boolean }[]) {
  const method = (r: (typeof rules)[number]) => {
    const options = create(MethodOptionsSchema);
    if (r.rule) setExtension(options, http, create(HttpRuleSchema, r.rule));
    if (r.status) setExtension(options, http_success_status, r.status);
    if (r.anonymous) setExtension(options, allow_anonymous, true);
    return { name: r.name, inputType: '.demo.v1.Req', outputType: '.demo.v1.Req', options };
  };
  const file = create(FileDescriptorProtoSchema, {
    name: 'demo/v1/demo.proto',
    package: 'demo.v1',
    syntax: 'proto3',
    dependency: ['google/api/annotations.proto', 'bank/v1/options.proto'],
    messageType: [
      {
        name: 'Req',
        field: [
          { name: 'thing_id', number: 1, type: 3, label: 1, jsonName: 'thingId' },
          { name: 'idempotency_key', number: 2, type: 9, label: 1, jsonName: 'idempotencyKey' },
          { name: 'note', number: 3, type: 9, label: 1, jsonName: 'note' },
        ],
      },
    ],
    service: [{ name: 'DemoService', method: rules.map(method) }],
  });
  const registry = createFileRegistry(file, (name) =>
    ({
      'google/api/annotations.proto': file_google_api_annotations,
      'google/api/http.proto': file_google_api_http,
      'google/protobuf/descriptor.proto': file_google_protobuf_descriptor,
      'bank/v1/options.proto': file_bank_v1_options,
    })[name],
  );
  const service = registry.getService('demo.v1.DemoService');
  if (!service) throw new Error('no service');
  return service;
}

const extensions = { http, successStatus: http_success_status, allowAnonymous: allow_anonymous };

describe('httpRoutes', () => {
  it('adds a route for every annotated method, and none for a method without annotation', () => {
    const routes = httpRoutes(
      [
        serviceWith([
          { name: 'GetThing', rule: { pattern: { case: 'get', value: '/v1/things/{thing_id}' } } },
          { name: 'MakeThing', rule: { pattern: { case: 'post', value: '/v1/things' }, body: '*' }, status: 201, anonymous: true },
          { name: 'Internal' },
        ]),
      ],
      extensions,
    );
    expect(routes.map((r) => [r.method.name, r.verb, r.pathTemplate, r.successStatus, r.allowAnonymous])).toEqual([
      ['GetThing', 'get', '/v1/things/{thing_id}', 200, false],
      ['MakeThing', 'post', '/v1/things', 201, true],
    ]);
    const [get, post] = routes;
    expect(get?.pathFields.map((f) => f.name)).toEqual(['thing_id']);
    expect(get?.queryFields.map((f) => f.name)).toEqual(['note']);
    expect(get?.idempotencyField?.name).toBe('idempotency_key');
    expect(post?.queryFields).toEqual([]);
    expect(routerPath('/v1/things/{thing_id}/parts')).toBe('/v1/things/:thing_id/parts');
  });

  it.each([
    ['a custom verb', { pattern: { case: 'custom', value: { kind: 'HEAD', path: '/v1/x' } } }, /unsupported google.api.http pattern/],
    ['a {name=pattern} variable', { pattern: { case: 'get', value: '/v1/{thing_id=things/*}' } }, /simple \{field\}/],
    ['a path variable that is no field', { pattern: { case: 'get', value: '/v1/{nope}' } }, /not a field/],
    ['a body naming one field', { pattern: { case: 'post', value: '/v1/x' }, body: 'note' }, /body must be/],
  ] as const)('refuses %s at start-up', (_name, rule, message) => {
    expect(() => httpRoutes([serviceWith([{ name: 'Bad', rule: rule as never }])], extensions)).toThrow(message);
  });
});

// REST routes derived from the proto's google.api.http annotations: one route per annotated
// method of the contract; adding an annotated RPC adds the route. Each route turns the Koa request
// into a UnaryCall for the edge's interceptor chain and writes back JSON or problem+json.
import { getOption, toJson } from '@bufbuild/protobuf';
import type { Router } from '@koa/router';
import type { Context } from 'koa';
import { http as httpExtension } from '@bank/proto/google/api/annotations_pb';
import { HttpBodySchema, type HttpBody } from '@bank/proto/google/api/httpbody_pb';
import { allow_anonymous, http_success_status, refresh_token_cookie } from '@bank/proto/bank/v1/options_pb';
import type { BankEdge } from '@bank/edge/bank-edge';
import { CallFailure, type CallTransport, type UnaryCall } from '@bank/edge/call/call';
import { BANK_SERVICES } from '@bank/edge/handlers/bank-handlers';
import { httpRoutes, routerPath, type HttpRoute } from '@bank/edge/http/http-rules';
import { nameServerSpan } from '@bank/shared/observability/tracing';
import { clientGone, readRawBody } from './body.ts';
import { writeProblem } from './problem.ts';
import { decodeHttpRequest } from './request-decoder.ts';
import { tokenCookieRule } from './token-cookie.ts';

/** The routes the gateway serves, read from the generated descriptors. */
export const API_ROUTES: readonly HttpRoute[] = httpRoutes(BANK_SERVICES, {
  http: httpExtension,
  successStatus: http_success_status,
  allowAnonymous: allow_anonymous,
});

const header = (ctx: Context, name: string): string | undefined => ctx.get(name) || undefined;

/** A signal aborted when the client hangs up before its answer is written. */
function clientSignal(ctx: Context): AbortSignal {
  const controller = new AbortController();
  if (clientGone(ctx)) controller.abort();
  else ctx.res.once('close', () => ctx.res.writableFinished || controller.abort());
  return controller.signal;
}

export function registerGatewayRoutes(router: Router, edge: BankEdge, options: { bodyLimitBytes: number }): void {
  for (const route of API_ROUTES) {
    const transport: CallTransport = {
      protocol: 'http',
      logMessage: 'request',
      outcome: (answer) => ({ method: route.verb.toUpperCase(), route: route.pathTemplate, status: answer ? answer.http : route.successStatus }),
    };
    const cookieMode = getOption(route.method, refresh_token_cookie);
    router[route.verb](routerPath(route.pathTemplate), async (ctx: Context) => {
      ctx.state.route = route.pathTemplate;
      nameServerSpan(route.verb.toUpperCase(), route.pathTemplate);
      // The chain logs this request; the gateway's own request log leaves it alone.
      ctx.state.loggedByEdge = true;
      const signal = clientSignal(ctx);
      const cookieRule = tokenCookieRule(cookieMode, ctx);
      const call: UnaryCall = {
        transport,
        method: route.method,
        header: (name) => header(ctx, name),
        setResponseHeader: (name, value) => ctx.set(name, value),
        clientIp: ctx.ip,
        deadlineMs: undefined,
        clientSignal: signal,
        decode: async () => {
          const message = decodeHttpRequest(route, {
            params: (ctx as Context & { params: Record<string, string> }).params,
            query: ctx.query,
            rawBody: await readRawBody(ctx, options.bodyLimitBytes),
            contentType: header(ctx, 'content-type'),
            idempotencyKey: header(ctx, 'idempotency-key'),
          });
          return cookieRule ? cookieRule.request(message) : message;
        },
        requestId: ctx.state.requestId as string,
        actor: undefined,
        signal,
      };
      try {
        const response = await edge.handle(call);
        cookieRule?.answered(response);
        ctx.status = route.successStatus;
        if (route.method.output.typeName === HttpBodySchema.typeName) {
          // google.api.HttpBody: the bytes themselves, with their content type.
          const body = response as HttpBody;
          ctx.type = body.contentType || 'application/octet-stream';
          ctx.body = Buffer.from(body.data);
        } else {
          ctx.type = 'application/json';
          ctx.body = JSON.stringify(toJson(route.method.output, response as never, { alwaysEmitImplicit: true }));
        }
      } catch (error) {
        if (!(error instanceof CallFailure)) throw error;
        cookieRule?.failed(error.answer.http);
        writeProblem(ctx, error.answer);
      }
    });
  }
}

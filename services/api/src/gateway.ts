// REST routes derived from the proto's google.api.http annotations: one route per annotated
// method of the contract; adding an annotated RPC adds the route.
import { toJson } from '@bufbuild/protobuf';
import type { Router } from '@koa/router';
import type { Context } from 'koa';
import { http as httpExtension } from '@bank/proto/google/api/annotations_pb';
import { allow_anonymous, http_success_status } from '@bank/proto/bank/v1/options_pb';
import { authenticateCall } from '@bank/shared/edge/authenticate';
import { BANK_SERVICES, createBankHandlers } from '@bank/shared/edge/handlers';
import { httpRoutes, routerPath, type HttpRoute } from '@bank/shared/edge/http-rules';
import type { Container } from '@bank/shared/app/container';
import { RequestCancelled } from '@bank/shared/errors/domain-error';
import { clientGone, readRawBody } from './body.ts';
import { decodeHttpRequest } from './request-decoder.ts';

/** The routes the gateway serves, read from the generated descriptors. */
export const API_ROUTES: readonly HttpRoute[] = httpRoutes(BANK_SERVICES, {
  http: httpExtension,
  successStatus: http_success_status,
  allowAnonymous: allow_anonymous,
});

const header = (ctx: Context, name: string): string | undefined => ctx.get(name) || undefined;

export function registerGatewayRoutes(router: Router, app: Container, options: { bodyLimitBytes: number }): void {
  const handlers = createBankHandlers(app);
  for (const route of API_ROUTES) {
    const handler = handlers.get(`${route.method.parent.typeName}.${route.method.name}`);
    if (!handler) throw new Error(`no handler for ${route.method.parent.typeName}.${route.method.name}`);
    router[route.verb](routerPath(route.pathTemplate), async (ctx: Context) => {
      ctx.state.route = route.pathTemplate;
      const actor = await authenticateCall(route.method, header(ctx, 'authorization'), (token) => app.sessions.authenticate(token));
      ctx.state.user = actor?.username;
      const rawBody = await readRawBody(ctx, options.bodyLimitBytes);
      const request = decodeHttpRequest(route, {
        params: (ctx as Context & { params: Record<string, string> }).params,
        query: ctx.query,
        rawBody,
        contentType: header(ctx, 'content-type'),
        idempotencyKey: header(ctx, 'idempotency-key'),
      });
      // The use cases take no cancellation signal: at least start no database work for a client
      // that has already hung up.
      if (clientGone(ctx)) throw new RequestCancelled();
      const response = await handler.handle(request, {
        actor,
        requestId: ctx.state.requestId as string,
        clientIp: ctx.ip,
        userAgent: header(ctx, 'user-agent'),
      });
      ctx.status = route.successStatus;
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(toJson(route.method.output, response as never, { alwaysEmitImplicit: true }));
    });
  }
}

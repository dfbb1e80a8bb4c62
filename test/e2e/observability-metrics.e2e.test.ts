// Every metric the Grafana dashboard and the Prometheus alert rules (deploy/observability) read
// must exist: the stack runs as the e2e tests run it, serves some traffic (sign-ups and logins
// over HTTP and gRPC, a deposit and a transfer, a failed email job), and each name must have a
// sample in a real scrape of the api, grpc and worker /metrics endpoints.
import { describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { createEmailQueue } from '@bank/shared/queue/email-queue';
import { createRedis } from '@bank/shared/redis/redis';
import { idemKey } from '../factories.ts';
import { alertRules, dashboardExpressions, metricNames, scrapedNames } from '../support/promql.ts';
import { openAccount, signUpAndLogIn } from './flows.ts';
import { stackPerSuite } from './harness.ts';

const suite = stackPerSuite();

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('dashboard and alert rules', () => {
  it('name only metrics that a real scrape of the api, grpc and worker processes has', async () => {
    const { stack, transports } = suite;
    const http = transports.get('http');
    const grpc = transports.get('grpc');
    if (!http || !grpc) throw new Error('transports not started');

    const alice = await signUpAndLogIn(http, stack.smtp);
    const bob = await signUpAndLogIn(grpc, stack.smtp);
    const from = await openAccount(http, alice, 'USD', 10_000n);
    const to = await openAccount(grpc, bob, 'USD');
    await grpc.call(TransferService, 'createTransfer', { fromAccountId: from, toAccountId: to, amount: 2_500n, currency: 'USD', idempotencyKey: idemKey() }, { token: alice.accessToken });
    await http.call(AccountService, 'getAccount', { accountId: to }, { token: alice.accessToken }).catch(() => undefined);
    // A job the worker refuses: a failed email, as an operator would see one.
    const redis = createRedis(stack.config.REDIS_URL);
    const queue = createEmailQueue(redis, { name: stack.config.EMAIL_QUEUE_NAME });
    try {
      await queue.add('send-verification-email', { outboxId: 'not-a-uuid' });
    } finally {
      await queue.close();
      redis.disconnect();
    }

    const endpoints = {
      api: `http://${stack.api.metricsHost}:${stack.api.metricsPort}/metrics`,
      grpc: `http://${stack.grpc.metricsHost}:${stack.grpc.metricsPort}/metrics`,
      worker: `http://${stack.worker.metricsHost}:${stack.worker.metricsPort}/metrics`,
    };
    const scrape = async () => {
      const texts = await Promise.all(Object.values(endpoints).map(async (url) => (await fetch(url)).text()));
      return scrapedNames(texts.join('\n'));
    };
    await until(async () => (await scrape()).has('bank_emails_failed_total'), 'the failed job to be counted');
    const scraped = await scrape();

    const used = [...dashboardExpressions(), ...alertRules().map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr }))].flatMap(({ where, expr }) =>
      metricNames(expr).map((name) => ({ where, name })),
    );
    expect(used.length).toBeGreaterThan(20);
    console.log(`${new Set(used.map((u) => u.name)).size} metric names in the dashboard and the rules, all checked against ${scraped.size} scraped names`);
    expect(used.filter(({ name }) => !scraped.has(name)).map(({ where, name }) => `${where}: ${name}`)).toEqual([]);
  });
});

// The real AWS SDK talks real HTTP to a local stand-in for AWS Secrets Manager (its JSON 1.1
// protocol: POST / with X-Amz-Target). No AWS account is involved.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseConfig } from './config.ts';
import { loadSecretsIntoEnv, SecretsError } from './secrets.ts';

interface Recorded {
  target: string | undefined;
  body: { SecretId?: string };
  authorization: string | undefined;
}

const SECRET_VALUE_MARKER = 'pa55w0rd-never-printed';
const secrets = new Map<string, string | { binary: true }>([
  [
    'bank/good',
    JSON.stringify({
      DATABASE_URL: `postgres://bank:${SECRET_VALUE_MARKER}@db.internal:5432/bank`,
      REDIS_URL: 'rediss://cache.internal:6379',
      PASETO_SECRET_KEY: `k4.secret.${SECRET_VALUE_MARKER}`,
      UNRELATED: 'ignored',
    }),
  ],
  ['bank/bad-json', `{"DATABASE_URL": "postgres://bank:${SECRET_VALUE_MARKER}@db/bank",`],
  ['bank/array', JSON.stringify([SECRET_VALUE_MARKER])],
  ['bank/not-a-string', JSON.stringify({ REDIS_URL: 6379, PASETO_SECRET_KEY: SECRET_VALUE_MARKER })],
  ['bank/binary', { binary: true }],
]);
const requests: Recorded[] = [];
let hang = false;

const server = http.createServer((request, response) => {
  let raw = '';
  request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
  request.on('end', () => {
    const body = JSON.parse(raw || '{}') as { SecretId?: string };
    requests.push({ target: request.headers['x-amz-target'] as string | undefined, body, authorization: request.headers.authorization });
    if (hang) return; // never answer: the client's timeout must fire
    const secret = secrets.get(body.SecretId ?? '');
    response.setHeader('content-type', 'application/x-amz-json-1.1');
    if (secret === undefined) {
      response.statusCode = 400;
      response.setHeader('x-amzn-errortype', 'ResourceNotFoundException');
      response.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
      return;
    }
    const common = { ARN: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${body.SecretId}`, Name: body.SecretId, VersionId: 'v1' };
    response.end(JSON.stringify(typeof secret === 'string' ? { ...common, SecretString: secret } : { ...common, SecretBinary: 'AAEC' }));
  });
});

let endpoint = '';
const savedEnv = { ...process.env };

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => {
  requests.length = 0;
  hang = false;
  for (const key of ['AWS_ENDPOINT_URL_SECRETS_MANAGER', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** The environment a pod would have: the SDK reads endpoint, region and keys from process.env. */
function useStandInThroughEnvironment(): void {
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpoint;
  process.env.AWS_REGION = 'eu-west-1';
  process.env.AWS_ACCESS_KEY_ID = 'AKIDSTANDIN';
  process.env.AWS_SECRET_ACCESS_KEY = 'stand-in-secret';
}

function standInClient(): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDSTANDIN', secretAccessKey: 'stand-in-secret' },
    maxAttempts: 1,
  });
}

async function failureOf(promise: Promise<unknown>): Promise<SecretsError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SecretsError);
    return error as SecretsError;
  }
  throw new Error('expected the loader to fail');
}

describe('loadSecretsIntoEnv against a stand-in Secrets Manager', () => {
  it('does nothing (no request) when AWS_SECRETS_MANAGER_SECRET_ID is not set', async () => {
    useStandInThroughEnvironment();
    const env: NodeJS.ProcessEnv = {};
    await expect(loadSecretsIntoEnv(env)).resolves.toEqual({ loaded: [] });
    expect(requests).toEqual([]);
  });

  it('a good secret fills the config keys, the environment wins, and parseConfig accepts the result', async () => {
    useStandInThroughEnvironment();
    const env: NodeJS.ProcessEnv = {
      AWS_SECRETS_MANAGER_SECRET_ID: 'bank/good',
      REDIS_URL: 'redis://from-env:6379',
      SMTP_URL: '',
    };
    const result = await loadSecretsIntoEnv(env);
    expect(result.loaded).toEqual(['DATABASE_URL', 'PASETO_SECRET_KEY']);
    expect(env.DATABASE_URL).toBe(`postgres://bank:${SECRET_VALUE_MARKER}@db.internal:5432/bank`);
    expect(env.REDIS_URL).toBe('redis://from-env:6379');
    expect(env.UNRELATED).toBeUndefined();
    const config = parseConfig(env);
    expect(config.DATABASE_URL).toBe(env.DATABASE_URL);
    expect(config.PASETO_SECRET_KEY).toBe(`k4.secret.${SECRET_VALUE_MARKER}`);
    // One signed GetSecretValue call over HTTP, as the real service receives it.
    expect(requests).toHaveLength(1);
    expect(requests[0]?.target).toBe('secretsmanager.GetSecretValue');
    expect(requests[0]?.body.SecretId).toBe('bank/good');
    expect(requests[0]?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDSTANDIN\/\d{8}\/eu-west-1\/secretsmanager\/aws4_request/);
  });

  it('a missing secret stops start-up with a message naming the secret and the AWS error', async () => {
    const error = await failureOf(loadSecretsIntoEnv({ AWS_SECRETS_MANAGER_SECRET_ID: 'bank/missing' }, { client: standInClient() }));
    expect(error.message).toBe(
      `cannot read secret "bank/missing" from AWS Secrets Manager: ResourceNotFoundException: Secrets Manager can't find the specified secret.`,
    );
  });

  it('bad JSON fails clearly and shows no part of the value', async () => {
    const env: NodeJS.ProcessEnv = { AWS_SECRETS_MANAGER_SECRET_ID: 'bank/bad-json' };
    const error = await failureOf(loadSecretsIntoEnv(env, { client: standInClient() }));
    expect(error.message).toBe('secret "bank/bad-json" is not valid JSON (expected an object of configuration keys)');
    expect(JSON.stringify({ message: error.message, stack: error.stack, cause: error.cause })).not.toContain(SECRET_VALUE_MARKER);
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('JSON that is not an object of strings fails without showing a value', async () => {
    const notObject = await failureOf(loadSecretsIntoEnv({ AWS_SECRETS_MANAGER_SECRET_ID: 'bank/array' }, standInClient()));
    expect(notObject.message).toBe('secret "bank/array" must be a JSON object of configuration keys');
    const notString = await failureOf(loadSecretsIntoEnv({ AWS_SECRETS_MANAGER_SECRET_ID: 'bank/not-a-string' }, standInClient()));
    expect(notString.message).toBe('secret "bank/not-a-string": key REDIS_URL must be a string');
    expect(`${notObject.stack}${notString.stack}`).not.toContain(SECRET_VALUE_MARKER);
  });

  it('a binary secret is refused', async () => {
    const error = await failureOf(loadSecretsIntoEnv({ AWS_SECRETS_MANAGER_SECRET_ID: 'bank/binary' }, standInClient()));
    expect(error.message).toBe('secret "bank/binary" has no SecretString (binary secrets are not supported)');
  });

  it('an endpoint that never answers fails start-up after the request timeout instead of hanging', async () => {
    useStandInThroughEnvironment();
    hang = true;
    const started = performance.now();
    const error = await failureOf(loadSecretsIntoEnv({ AWS_SECRETS_MANAGER_SECRET_ID: 'bank/good' }, { requestTimeoutMs: 300 }));
    expect(error.message).toMatch(/^cannot read secret "bank\/good" from AWS Secrets Manager: TimeoutError/);
    // Three attempts of 300 ms each, plus backoff between them.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(requests.length).toBeGreaterThanOrEqual(1);
  });
});

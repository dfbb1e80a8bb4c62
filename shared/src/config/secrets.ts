import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** Keys a Secrets Manager secret may fill; anything else in the secret is ignored. */
export const SECRET_KEYS = [
  'DATABASE_URL',
  'MIGRATION_DATABASE_URL',
  'APP_DATABASE_PASSWORD',
  'REDIS_URL',
  'SMTP_URL',
  'MAIL_FROM',
  'PASETO_SECRET_KEY',
  'PASETO_PUBLIC_KEYS',
] as const;

/** Start-up failure while loading the secret. The message never contains a secret value. */
export class SecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretsError';
  }
}

export interface LoadSecretsOptions {
  /** A client to use instead of one built from the environment (region, credentials, endpoint). */
  client?: SecretsManagerClient;
  /** Deadline for one request to Secrets Manager, so a blackholed endpoint cannot hang start-up. */
  requestTimeoutMs?: number;
}

/**
 * When AWS_SECRETS_MANAGER_SECRET_ID is set, reads that JSON secret and fills the config keys it
 * holds into `env` (the environment wins where both are set). The AWS SDK finds credentials and
 * region the usual way (IRSA on EKS, static keys on Kind); AWS_ENDPOINT_URL_SECRETS_MANAGER
 * points it elsewhere (tests, LocalStack).
 *
 * @throws SecretsError when the secret cannot be read, is not a JSON object of strings, or is
 *   binary. Messages name the secret id, the AWS error and the offending key, never a value.
 */
export async function loadSecretsIntoEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadSecretsOptions | SecretsManagerClient = {},
): Promise<{ loaded: string[] }> {
  const secretId = env.AWS_SECRETS_MANAGER_SECRET_ID;
  if (!secretId) return { loaded: [] };
  const { client, requestTimeoutMs = 10_000 } = options instanceof SecretsManagerClient ? { client: options } : options;
  const sm =
    client ??
    new SecretsManagerClient({
      maxAttempts: 3,
      // Without throwOnRequestTimeout the SDK only logs a warning and keeps waiting.
      requestHandler: { connectionTimeout: requestTimeoutMs, requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true },
      ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    });
  let text: string | undefined;
  try {
    const result = await sm.send(new GetSecretValueCommand({ SecretId: secretId }));
    text = result.SecretString;
  } catch (error) {
    // AWS error names and messages describe the failure (not found, access denied, timeout);
    // they never echo the secret's contents.
    const { name = 'Error', message = '' } = error as { name?: string; message?: string };
    throw new SecretsError(`cannot read secret "${secretId}" from AWS Secrets Manager: ${name}${message ? `: ${message}` : ''}`);
  } finally {
    if (!client) sm.destroy();
  }
  if (text === undefined) throw new SecretsError(`secret "${secretId}" has no SecretString (binary secrets are not supported)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's own message quotes the input, so it is deliberately dropped.
    throw new SecretsError(`secret "${secretId}" is not valid JSON (expected an object of configuration keys)`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SecretsError(`secret "${secretId}" must be a JSON object of configuration keys`);
  }
  const loaded: string[] = [];
  for (const key of SECRET_KEYS) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new SecretsError(`secret "${secretId}": key ${key} must be a string`);
    if (env[key] === undefined || env[key] === '') {
      env[key] = value;
      loaded.push(key);
    }
  }
  return { loaded };
}

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** Keys a Secrets Manager secret may fill; anything else in the secret is ignored. */
export const SECRET_KEYS = [
  'DATABASE_URL',
  'REDIS_URL',
  'SMTP_URL',
  'MAIL_FROM',
  'PASETO_SECRET_KEY',
  'PASETO_PUBLIC_KEYS',
] as const;

export class SecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretsError';
  }
}

/**
 * When AWS_SECRETS_MANAGER_SECRET_ID is set, reads that JSON secret and fills the config keys it
 * holds into `env` (the environment wins where both are set). Errors name the secret id and the
 * problem, never a value. The AWS SDK finds credentials and region the usual way (IRSA on EKS,
 * static keys on Kind); AWS_ENDPOINT_URL_SECRETS_MANAGER points it elsewhere (tests).
 */
export async function loadSecretsIntoEnv(
  env: NodeJS.ProcessEnv = process.env,
  client?: SecretsManagerClient,
): Promise<{ loaded: string[] }> {
  const secretId = env.AWS_SECRETS_MANAGER_SECRET_ID;
  if (!secretId) return { loaded: [] };
  const sm = client ?? new SecretsManagerClient({ maxAttempts: 3 });
  let text: string | undefined;
  try {
    const result = await sm.send(new GetSecretValueCommand({ SecretId: secretId }));
    text = result.SecretString;
  } catch (error) {
    const name = (error as { name?: string }).name ?? 'Error';
    throw new SecretsError(`cannot read secret "${secretId}" from AWS Secrets Manager: ${name}`);
  }
  if (text === undefined) throw new SecretsError(`secret "${secretId}" has no SecretString (binary secrets are not supported)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SecretsError(`secret "${secretId}" is not valid JSON`);
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

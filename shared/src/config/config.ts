import { configSchema, type Config } from './config.schema.ts';

export type { Config } from './config.schema.ts';

/** Thrown when the environment is invalid; lists every bad variable, never a value. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses an environment (default: process.env) into a Config, reporting all problems at once. */
export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as "not set", as they do in most container tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = configSchema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  return result.data;
}

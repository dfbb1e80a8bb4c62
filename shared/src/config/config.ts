import { configSchema, type Config } from './config.schema.ts';
import { productionProblems, type ProcessName } from './production.ts';

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

/**
 * parseConfig for one process: with NODE_ENV=production it also refuses every development default
 * that process would otherwise run on (productionProblems), listed with the schema's problems in
 * one ConfigError.
 */
export function parseProcessConfig(name: ProcessName, env: NodeJS.ProcessEnv = process.env): Config {
  const problems = productionProblems(name, env);
  let config: Config | undefined;
  try {
    config = parseConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.unshift(...error.problems);
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return config;
}

/** Exit codes of the operator scripts (documented in deploy/README.md). */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  cluster: 3,
  migrationFailed: 4,
  rolledBack: 5,
  rollbackFailed: 6,
  /** A program the script needs (kubectl >= 1.27) is missing or too old. */
  missingProgram: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An expected operator failure: printed as its message alone, and the process exits with `exitCode`. */
export class OperatorError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OperatorError';
    this.exitCode = exitCode;
  }
}

/** HTTP status of a client-node ApiException, or undefined for network-level failures. */
export function httpStatusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

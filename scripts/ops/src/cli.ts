import { EXIT, OperatorError, type ExitCode } from './k8s/errors.ts';

export interface Output {
  log: (line: string) => void;
  error: (line: string) => void;
}

export const consoleOutput: Output = {
  log: (line) => console.log(line),
  error: (line) => console.error(line),
};

/** Runs a script's body and turns its outcome into an exit code; expected failures print one line. */
export async function runCli(body: (argv: string[], out: Output) => Promise<ExitCode>, argv: string[], out: Output = consoleOutput): Promise<ExitCode> {
  try {
    return await body(argv, out);
  } catch (error) {
    if (error instanceof OperatorError) {
      out.error(`error: ${error.message}`);
      return error.exitCode;
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      out.error(`error: ${(error as Error).message}`);
      return EXIT.usage;
    }
    out.error(`unexpected error: ${(error as Error).stack ?? String(error)}`);
    return EXIT.unexpected;
  }
}

/** Entry point of a script run with node: runs it on process.argv and sets the exit code. */
export async function runMain(body: (argv: string[], out: Output) => Promise<ExitCode>): Promise<void> {
  process.exitCode = await runCli(body, process.argv.slice(2));
}

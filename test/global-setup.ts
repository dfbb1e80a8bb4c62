// Runs once before all test files: fail fast, in one line, when PostgreSQL or Redis is missing.
import { checkTestServices } from './services.ts';

export default async function globalSetup(): Promise<void> {
  await checkTestServices();
}

// The migration job: `up` applies pending migrations, `status` lists them. Exit code 0 on
// success; on failure one line on stderr that says why, and exit code 1.
import { parseProcessConfig } from '@bank/shared/config/config';
import { loadSecretsIntoEnv } from '@bank/shared/config/secrets';
import { migrateUp, migrationStatus, type MigratorConfig } from './migrator.ts';

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] ?? 'up';
  if (command !== 'up' && command !== 'status') {
    console.error(`migrator: unknown command "${command}" (use: up | status)`);
    return 2;
  }
  await loadSecretsIntoEnv();
  const config: MigratorConfig = parseProcessConfig('migrator');
  // The owner's connection; DATABASE_URL only where no separate one is configured (npm start).
  const databaseUrl = config.MIGRATION_DATABASE_URL ?? config.DATABASE_URL;
  if (command === 'up') {
    const result = await migrateUp(databaseUrl, {
      log: (line) => console.log(`migrator: ${line}`),
      appRole: { name: config.APP_DATABASE_ROLE, password: config.APP_DATABASE_PASSWORD },
    });
    console.log(
      result.applied.length === 0
        ? `migrator: up to date (${result.alreadyApplied} applied)`
        : `migrator: applied ${result.applied.length} migration(s)`,
    );
    return 0;
  }
  for (const m of await migrationStatus(databaseUrl)) {
    console.log(`${m.appliedAt ? 'applied' : 'pending'}  ${m.file}${m.appliedAt ? `  ${m.appliedAt.toISOString()}` : ''}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`migrator: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    process.exit(1);
  },
);

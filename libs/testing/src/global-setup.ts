import { runMigrations } from '@gradpool/db';
import { prepareTemplateDatabase, TEMPLATE_DATABASE } from './services.js';

/** vitest global setup: one migrated template database of this run for every test file to clone. */
export default async function setup(): Promise<() => Promise<void>> {
  // Test workers start after this and inherit the environment: they clone this run's template.
  process.env.GRADPOOL_TEST_TEMPLATE = TEMPLATE_DATABASE;
  return prepareTemplateDatabase(runMigrations);
}

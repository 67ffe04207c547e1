import { runMigrations } from '@gradpool/db';
import { prepareTemplateDatabase } from './services.js';

/** vitest global setup: one migrated template database for every test file to clone. */
export default async function setup(): Promise<void> {
  await prepareTemplateDatabase(runMigrations);
}

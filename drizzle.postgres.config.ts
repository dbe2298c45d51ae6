import { defineConfig } from 'drizzle-kit';

/** PostgreSQL migrations (`DATABASE_URL`); `drizzle.config.ts` is the SQLite twin. */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/postgres/tables.ts',
  out: './drizzle/postgres',
});

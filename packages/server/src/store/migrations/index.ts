import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_core.js";

/** Migrations ship inside the build, so `migrate` needs no files beside the binary. */
export const migrations: MigrationProvider = {
  getMigrations: async (): Promise<Record<string, Migration>> => ({
    "0001_core": m0001,
  }),
};

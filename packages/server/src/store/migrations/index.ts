import type { Migration, MigrationProvider } from "kysely";
import type { Dialect } from "../db.js";
import * as m0001 from "./0001_core.js";
import * as m0002 from "./0002_account_security.js";
import * as m0003 from "./0003_one_time_tokens.js";
import * as m0004 from "./0004_identities.js";
import * as m0005 from "./0005_webauthn.js";
import * as m0006 from "./0006_sessions_refresh_hash_not_unique.js";
import * as m0007 from "./0007_users_session_epoch.js";
import * as m0008 from "./0008_users_guest_index.js";
import * as m0009 from "./0009_users_email_ever_verified.js";
import * as m0010 from "./0010_oauth_codes_session_epoch.js";
import * as m0011 from "./0011_webauthn_challenges_for_identifier.js";

/**
 * Migrations ship inside the build, so `migrate` needs no files beside the binary. One
 * set for both databases; a step that must differ between them is told which it runs on.
 */
export const migrationsFor = (dialect: Dialect): MigrationProvider => ({
  getMigrations: async (): Promise<Record<string, Migration>> => ({
    "0001_core": m0001,
    "0002_account_security": m0002,
    "0003_one_time_tokens": m0003,
    "0004_identities": m0004,
    "0005_webauthn": m0005,
    "0006_sessions_refresh_hash_not_unique": { up: (db) => m0006.up(db, dialect) },
    "0007_users_session_epoch": m0007,
    "0008_users_guest_index": m0008,
    "0009_users_email_ever_verified": m0009,
    "0010_oauth_codes_session_epoch": m0010,
    "0011_webauthn_challenges_for_identifier": m0011,
  }),
});

import { type Kysely, sql } from "kysely";
import { ApiTokenStore } from "./api-tokens.js";
import { AuditStore } from "./audit.js";
import { BackupCodeStore } from "./backup-codes.js";
import type { Db, Dialect } from "./db.js";
import { IdentityStore } from "./identities.js";
import { MetaStore } from "./meta.js";
import { OneTimeTokenStore } from "./one-time-tokens.js";
import type { Database } from "./schema.js";
import { ServerSecretStore } from "./server-secrets.js";
import { SessionStore } from "./sessions.js";
import { SigningKeyStore } from "./signing-keys.js";
import { UserStore } from "./users.js";
import { WebauthnStore } from "./webauthn.js";

/** Every repository over one connection (or one transaction). */
export class Store {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly signingKeys: SigningKeyStore;
  readonly secrets: ServerSecretStore;
  readonly audit: AuditStore;
  readonly meta: MetaStore;
  readonly apiTokens: ApiTokenStore;
  readonly backupCodes: BackupCodeStore;
  readonly oneTimeTokens: OneTimeTokenStore;
  readonly identities: IdentityStore;
  readonly webauthn: WebauthnStore;

  constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /** In a transaction: what runs once it has committed (afterCommit). */
    private readonly onCommit?: Array<() => void>,
  ) {
    this.users = new UserStore(db, dialect);
    this.sessions = new SessionStore(db);
    this.signingKeys = new SigningKeyStore(db);
    this.secrets = new ServerSecretStore(db);
    this.audit = new AuditStore(db);
    this.meta = new MetaStore(db);
    this.apiTokens = new ApiTokenStore(db);
    this.backupCodes = new BackupCodeStore(db);
    this.oneTimeTokens = new OneTimeTokenStore(db);
    this.identities = new IdentityStore(db);
    this.webauthn = new WebauthnStore(db);
  }

  static of(db: Db): Store {
    return new Store(db.kysely, db.dialect);
  }

  /** Without the query timeout, for the purge job (see Db.longWork). */
  static forLongWork(db: Db): Store {
    return new Store(db.longWork, db.dialect);
  }

  /**
   * Runs `fn` in one transaction: all of its writes land, or none. What `fn` gave to
   * `afterCommit` runs once the commit has succeeded, and never after a rollback.
   */
  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    const onCommit: Array<() => void> = [];
    const result = await this.db
      .transaction()
      .execute((trx) => fn(new Store(trx, this.dialect, onCommit)));
    for (const effect of onCommit) effect();
    return result;
  }

  /**
   * Runs `effect` once this Store's writes are visible to every other connection: at once
   * outside a transaction, after the commit inside one. For telling other nodes about a
   * write (cache evictions): told before the commit, a node re-reads the old row and caches
   * it with nothing left to evict it, and a rollback leaves them told of what never happened.
   */
  afterCommit(effect: () => void): void {
    if (this.onCommit) this.onCommit.push(effect);
    else effect();
  }

  /**
   * Inside a transaction: holds the user's row until commit, so a per-user limit's
   * count and the insert it allows act as one step. PostgreSQL locks the row;
   * SQLite already runs one transaction at a time.
   */
  async lockUser(id: string): Promise<void> {
    if (this.dialect !== "postgres") return;
    await this.db.selectFrom("users").select("id").where("id", "=", id).forUpdate().execute();
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}

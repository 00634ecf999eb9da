import { afterAll, describe, expect, it } from "vitest";
import { PG_CONNECT_TIMEOUT_MS } from "../../src/store/postgres.js";
import { tcpServer } from "../tcp-server.js";
import { type Deployment, deployment } from "./processes.js";

const DAY_MS = 86_400_000;

/** The operator's commands, run as a shell would run them, on PostgreSQL. */
describe("latchkey CLI", () => {
  let dep: Deployment | undefined;
  afterAll(() => dep?.drop());

  // Regression: `admin create` took any username and email the API refuses ("bad name!",
  // "notanemail"), answered a taken name with "UNIQUE constraint failed: users.username_key",
  // and a weak password with "must be at least 8 characters", naming no variable.
  it("admin create holds the input to the API's rules and says what is wrong", async () => {
    const ops = deployment({}, { ROOT_PW: "a long admin password", SHORT_PW: "short" });
    try {
      await ops.cli("admin", "create", "--username", "root", "--password-env", "ROOT_PW");
      const refusal = async (...args: string[]) => {
        const err = (await ops.cli("admin", "create", ...args).catch((e: unknown) => e)) as {
          code: number;
          stderr: string;
        };
        expect(err.code).toBe(1);
        return err.stderr.trim();
      };
      expect(await refusal("--username", "ROOT", "--password-env", "ROOT_PW")).toBe(
        "latchkey: An account with this username or email already exists",
      );
      expect(await refusal("--username", "bad name!", "--password-env", "ROOT_PW")).toMatch(
        /^latchkey: --username: 2-50 letters/,
      );
      expect(
        await refusal("--username", "ada", "--email", "notanemail", "--password-env", "ROOT_PW"),
      ).toBe("latchkey: --email: notanemail is not an email address");
      expect(await refusal("--username", "ada", "--password-env", "SHORT_PW")).toBe(
        "latchkey: SHORT_PW: must be at least 8 characters",
      );
      const users = await ops.query<{ username: string }>("select username from users");
      expect(users.map((u) => u.username)).toEqual(["root"]);
    } finally {
      await ops.drop();
    }
  });

  // Regression: with a PostgreSQL port that accepted and never answered, `migrate` and
  // `serve` waited for ever.
  it("migrate and serve give up on a database that never answers, in one line, exit 1", async () => {
    const silent = await tcpServer(() => {});
    const url = `postgres://latchkey:s3cret@127.0.0.1:${silent.port}/db`;
    const ops = deployment({}, { DATABASE_URL: url });
    try {
      for (const command of ["migrate", "serve"]) {
        const started = performance.now();
        const err = (await ops.cli(command).catch((e: unknown) => e)) as {
          code: number;
          stderr: string;
        };
        expect(performance.now() - started).toBeLessThan(PG_CONNECT_TIMEOUT_MS + 3000);
        expect(err.code).toBe(1);
        expect(err.stderr).toBe(
          `latchkey: Cannot connect to PostgreSQL (DATABASE_URL, 127.0.0.1:${silent.port}): no answer within ${PG_CONNECT_TIMEOUT_MS / 1000} s\n`,
        );
      }
    } finally {
      await silent.close();
      await ops.drop();
    }
  });

  // Regression: a typo in a variable's name left its default in place without a word; for
  // `migrate` that can mean another schema than the one meant.
  it("warns on stderr of LATCHKEY_* variables that name no setting, and carries on", async () => {
    const ops = deployment({}, { LATCHKEY_DATABSE_SCHEMA: "elsewhere" });
    try {
      const { stdout, stderr } = await ops.cli("migrate");
      expect(stderr).toBe(
        "latchkey: warning: Ignoring unknown environment variables: LATCHKEY_DATABSE_SCHEMA (did you mean LATCHKEY_DATABASE_SCHEMA?)\n",
      );
      expect(stdout).toContain("Database is up to date");
    } finally {
      await ops.drop();
    }
  });

  // Regression: the variable `--password-env` names was warned of as unknown when it had
  // the LATCHKEY_ prefix, though the command had just read the password from it.
  it("does not warn of the variable admin create reads the password from", async () => {
    const ops = deployment({}, { LATCHKEY_ROOT_PASSWORD: "a long admin password" });
    try {
      const { stdout, stderr } = await ops.cli(
        "admin",
        "create",
        "--username",
        "root",
        "--password-env",
        "LATCHKEY_ROOT_PASSWORD",
      );
      expect(stdout).toMatch(/^Created admin root/);
      expect(stderr).toBe("");
    } finally {
      await ops.drop();
    }
  });

  it("creates an admin, lists users, and purges ended sessions in batches", async () => {
    dep = deployment({}, { ROOT_PW: "a long admin password" });
    expect((await dep.cli("migrate")).stdout).toContain("Database is up to date");
    await dep.cli(
      "admin",
      "create",
      "--username",
      "root",
      "--email",
      "root@example.com",
      "--password-env",
      "ROOT_PW",
    );
    const [root] = await dep.query<{ id: string }>("select id from users where username = 'root'");

    const listed = await dep.cli("users", "list", "--search", "ROOT@");
    expect(listed.stdout.trim().split("\t")).toEqual([
      root?.id,
      "root@example.com",
      "root",
      "admin",
      "free",
      "enabled",
    ]);
    expect(listed.stderr).toContain("1 listed");
    expect((await dep.cli("users", "list", "--search", "nobody")).stdout).toBe("");

    // 25 000 sessions that ended two days ago (more than two batches) and 3 live ones.
    const now = Date.now();
    await dep.query(
      `insert into sessions (id, user_id, refresh_hash, absolute_expires_at, created_at, last_seen_at)
       select 'ended-' || g, $1, 'hash-' || g, $2::bigint, $3::bigint, $3::bigint from generate_series(1, 25000) g`,
      [root?.id, now - 2 * DAY_MS, now - 9 * DAY_MS],
    );
    await dep.query(
      `insert into sessions (id, user_id, refresh_hash, absolute_expires_at, created_at, last_seen_at)
       select 'live-' || g, $1, 'live-hash-' || g, $2::bigint, $3::bigint, $3::bigint from generate_series(1, 3) g`,
      [root?.id, now + DAY_MS, now],
    );
    const purged = await dep.cli("sessions", "purge");
    expect(purged.stderr).toMatch(/25,000 deleted in [\d.]+ s/);
    const left = await dep.query<{ id: string }>("select id from sessions order by id");
    expect(left.map((r) => r.id)).toEqual(["live-1", "live-2", "live-3"]);
  });
});

// Seeds a PostgreSQL schema with USERS users and SESSIONS sessions, set-based
// (INSERT ... SELECT generate_series) in chunks, with progress on stderr, plus
// KNOWN_USERS accounts bench-<n>@example.com with real Argon2id hashes to sign in as.
// Usage: node bench/seed-scale.mjs <schema>   (the schema is created and migrated first)
// Env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), USERS, SESSIONS.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Algorithm, hash } from "@node-rs/argon2";
import pg from "pg";

export const PASSWORD = "correct horse battery staple";
export const KNOWN_USERS = 32;
const DAY_MS = 86_400_000;
const USER_CHUNK = 100_000;
const SESSION_CHUNK = 250_000;
const root = new URL("..", import.meta.url).pathname;

/** Latchkey's default Argon2id parameters, so every seeded hash verifies without a rehash. */
const argon2 = { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };

/**
 * A UUIDv7-shaped id in SQL: the 48-bit millisecond time first (so the primary key grows
 * at its end like the server's own ids), then hex from md5(seed). Deterministic in
 * `seed`, so a session names its user without a join. A SQL function: inlined per row.
 */
const UUID7_FUNCTION = `create function pg_temp.uuid7(ms bigint, seed text) returns text
  language sql immutable as $$
    select substr(h,1,8)||'-'||substr(h,9,4)||'-7'||substr(h,14,3)||'-'||substr(h,17,4)||'-'||substr(h,21,12)
    from (select lpad(to_hex(ms), 12, '0') || substr(md5(seed), 1, 20) as h) x
  $$`;

function progress(label, done, total, started) {
  const s = (performance.now() - started) / 1000;
  const rate = Math.round(done / s);
  process.stderr.write(
    `  ${label}: ${done.toLocaleString("en")} / ${total.toLocaleString("en")} (${rate.toLocaleString("en")}/s, ${s.toFixed(0)} s)\n`,
  );
}

export async function seed({ url, schema, users, sessions, migrate = true }) {
  const env = { ...process.env, DATABASE_URL: url, LATCHKEY_DATABASE_SCHEMA: schema };
  if (migrate) {
    execFileSync("node", ["packages/server/dist/bundle/latchkey.mjs", "migrate"], {
      cwd: root,
      env,
      stdio: "ignore",
    });
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`set search_path to "${schema}"`);
  // Bulk load: a lost last commit would only mean seeding again.
  await client.query("set synchronous_commit = off");
  await client.query(UUID7_FUNCTION);
  const now = Date.now();

  // Users 1..N: created over the last 2 years, all with one (valid) hash of an unknown
  // password: 1 M Argon2 hashes would take hours and teach nothing about lookups.
  const filler = await hash(randomBytes(16).toString("hex"), argon2);
  const started = performance.now();
  for (let from = 1; from <= users; from += USER_CHUNK) {
    const to = Math.min(users, from + USER_CHUNK - 1);
    await client.query(
      `insert into users (id, email, email_verified, username, username_key, password_hash, role, tier,
         subscription_status, created_at, updated_at)
       select pg_temp.uuid7($1::bigint - (($2::bigint - g) * 60000), 'u' || g),
         'user' || g || '@scale.example', 1, 'User' || g, 'user' || g, $3,
         'user', case when g % 10 = 0 then 'pro' else 'free' end,
         case when g % 10 = 0 then 'active' else 'none' end,
         $1::bigint - (($2::bigint - g) * 60000), $1::bigint - (($2::bigint - g) * 60000)
       from generate_series($4::bigint, $5::bigint) as g`,
      [now, users, filler, from, to],
    );
    progress("users", to, users, started);
  }

  // Sessions spread over the users (a stride through them); one in ten revoked, about
  // one in nine past its end, the rest live for up to 80 more days.
  const sessionsStarted = performance.now();
  const restore = await dropConstraintsAndIndexes(client, "sessions");
  for (let from = 1; from <= sessions; from += SESSION_CHUNK) {
    const to = Math.min(sessions, from + SESSION_CHUNK - 1);
    await client.query(
      `insert into sessions (id, user_id, refresh_hash, generation, absolute_expires_at, created_at,
         last_seen_at, ip, user_agent, browser, os, amr, remember_me, revoked_at, revoked_reason)
       select pg_temp.uuid7(created, 's' || s),
         pg_temp.uuid7($1::bigint - (($2::bigint - u) * 60000), 'u' || u),
         md5('r' || s) || substr(md5('q' || s), 1, 11), s % 5, expires, created, created,
         '10.' || (s % 250) || '.' || (s / 250 % 250) || '.' || (s / 62500 % 250),
         'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
         'Chrome 126', 'Windows 10', '["pwd"]', (s % 3 = 0)::int,
         case when s % 10 = 0 then created + 3600000 end,
         case when s % 10 = 0 then 'logout' end
       from (select s, 1 + (s * 7919) % $2::bigint as u,
               $1::bigint - (s % 90) * ${DAY_MS}::bigint - (s % 86400) * 1000 as created,
               $1::bigint + (80 - s % 90) * ${DAY_MS}::bigint as expires
             from generate_series($3::bigint, $4::bigint) as s) x`,
      [now, users, from, to],
    );
    progress("sessions", to, sessions, sessionsStarted);
  }
  await restore();

  await seedKnownUsers(client, now);
  process.stderr.write("  analyze\n");
  await client.query("analyze");
  await client.end();
}

/**
 * Loading into a bare table and indexing afterwards is several times faster than
 * maintaining four indexes and a foreign-key check per row. The definitions are read
 * from the catalog, so whatever the migrations created is what comes back.
 */
async function dropConstraintsAndIndexes(client, table) {
  const { rows: constraints } = await client.query(
    `select conname, pg_get_constraintdef(oid) as def from pg_constraint
     where conrelid = $1::regclass order by contype = 'f', conname`,
    [table],
  );
  const { rows: indexes } = await client.query(
    `select indexname, indexdef from pg_indexes where schemaname = current_schema() and tablename = $1
     and indexname not in (select conname from pg_constraint where conrelid = $1::regclass)`,
    [table],
  );
  for (const c of [...constraints].reverse())
    await client.query(`alter table ${table} drop constraint "${c.conname}"`);
  for (const i of indexes) await client.query(`drop index "${i.indexname}"`);
  return async () => {
    await client.query("set maintenance_work_mem = '512MB'");
    for (const c of constraints) {
      const started = performance.now();
      await client.query(`alter table ${table} add constraint "${c.conname}" ${c.def}`);
      process.stderr.write(
        `  ${c.conname} restored in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
      );
    }
    for (const i of indexes) {
      const started = performance.now();
      await client.query(i.indexdef);
      process.stderr.write(
        `  ${i.indexname} rebuilt in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
      );
    }
  };
}

/** The accounts the benchmark signs in as, with hashes of PASSWORD. */
async function seedKnownUsers(client, now) {
  const { uuidv7 } = await import("../packages/server/dist/domain/ids.js");
  for (let i = 0; i < KNOWN_USERS; i++) {
    await client.query(
      `insert into users (id, email, email_verified, username, username_key, password_hash, created_at, updated_at)
       values ($1, $2, 1, $3, $4, $5, $6, $6)`,
      [
        uuidv7(now),
        `bench-${i}@example.com`,
        `bench${i}`,
        `bench${i}`,
        await hash(PASSWORD, argon2),
        now,
      ],
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const schema = process.argv[2];
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema ?? "")) {
    console.error("usage: node bench/seed-scale.mjs <schema>");
    process.exit(1);
  }
  await seed({
    url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    schema,
    users: Number(process.env.USERS ?? 1_000_000),
    sessions: Number(process.env.SESSIONS ?? 5_000_000),
  });
}

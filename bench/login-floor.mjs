// The login floor on this machine: a bare Fastify route (bare-fastify.mjs) that takes a
// login's JSON body and does nothing but verify its password, with Latchkey's Argon2id
// parameters and library, on the thread pool size it is given (UV_THREADPOOL_SIZE). What
// it loses against argon2-raw.mjs is the cost of serving logins over HTTP at all on this
// machine (the request, its wake-ups, the load generator on the same cores); what
// Latchkey loses against it is the work of a real sign-in (RESULTS.md).
import { hash, verify } from "@node-rs/argon2";
import { ARGON2_PARAMS } from "./argon2-params.mjs";
import { bareFastify } from "./bare-fastify.mjs";

const stored = await hash("correct horse battery staple", ARGON2_PARAMS);

const app = bareFastify();
app.post("/auth/login", async (request, reply) => {
  const { password } = /** @type {{ password: string }} */ (request.body);
  if (!(await verify(stored, password))) return reply.code(401).send({ ok: false });
  return { ok: true };
});
app.get("/healthz", async () => ({ ok: true }));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8098) });

// The HTTP ceiling on this machine: a bare Fastify route (bare-fastify.mjs), so the
// users/me ratio isolates auth work.
import { bareFastify } from "./bare-fastify.mjs";

const app = bareFastify();
app.get("/hello", async () => ({ hello: "world" }));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8099) });

import { describe, expect, it } from "vitest";
import { bearer, registerUser } from "../helpers.js";
import { openSocket } from "../ws-client.js";
import { useTwoNodes } from "./two-nodes.js";

describe("GET /ws across two nodes", () => {
  const nodes = useTwoNodes();

  it("a logout on node B closes the session's socket on node A at once", async () => {
    await nodes.a.listen();
    const { accessToken } = await registerUser(nodes.a);
    const client = await openSocket(nodes.a.url, {
      protocols: ["latchkey.v1", `bearer.${accessToken}`],
    });
    expect(await client.next()).toMatchObject({ type: "authenticated" });
    const logout = await nodes.b.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(accessToken),
    });
    expect(logout.statusCode).toBe(204);
    const revokedAt = Date.now();
    expect(await client.next()).toEqual({ type: "session_revoked" });
    expect(await client.closed()).toEqual({ code: 4401, reason: "session_revoked" });
    // Redis pub/sub, not a heartbeat (30 s) or a clock move, delivered it.
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });
});

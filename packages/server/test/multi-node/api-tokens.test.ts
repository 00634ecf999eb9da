import { describe, expect, it, vi } from "vitest";
import { bearer, json, registerUser } from "../helpers.js";
import { useTwoNodes } from "./two-nodes.js";

/** Two nodes of one deployment: an API token deleted on one is refused on the other. */
describe("API tokens on two nodes (PostgreSQL + Redis)", () => {
  const nodes = useTwoNodes();

  it("a deletion on node A evicts node B's cached lookup", async () => {
    const { accessToken } = await registerUser(nodes.a);
    const created = await nodes.a.http.inject({
      method: "POST",
      url: "/tokens",
      ...json({ name: "ci", scopes: ["profile:read"] }),
      headers: { "content-type": "application/json", ...bearer(accessToken) },
    });
    const { id, token } = created.json();
    const me = () => nodes.b.http.inject({ url: "/users/me", headers: bearer(token) });
    expect((await me()).statusCode).toBe(200); // B now caches the token for seconds

    const deleted = await nodes.a.http.inject({
      method: "DELETE",
      url: `/tokens/${id}`,
      headers: bearer(accessToken),
    });
    expect(deleted.statusCode).toBe(204);
    // The clocks stand still, so only the published eviction can make B refuse it.
    await vi.waitFor(async () => expect((await me()).statusCode).toBe(401), { timeout: 1000 });
  });
});

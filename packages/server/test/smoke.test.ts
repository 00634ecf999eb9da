import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, registerUser, startTestApp, type TestApp } from "./helpers.js";

describe("smoke", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.close());

  it("registers and reads the profile", async () => {
    const tokens = await registerUser(app, { username: "smoke" });
    const me = await app.http.inject({ url: "/users/me", headers: bearer(tokens.accessToken) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ username: "smoke", role: "user", identities: [] });
  });
});

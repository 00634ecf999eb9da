import { describe, expect, it } from "vitest";
import type { TestApp } from "../helpers.js";
import { enrolledUser, finishMfa, passwordLogin, totpAt } from "../mfa-helpers.js";
import { useTwoNodes } from "./two-nodes.js";

/** One-time codes and MFA tokens are claimed in Redis, so the other node refuses a replay. */
describe("MFA replay across two nodes", () => {
  const nodes = useTwoNodes();

  const mfaToken = async (app: TestApp, email: string) =>
    (await passwordLogin(app, email)).json<{ mfaToken: string }>().mfaToken;

  it("a TOTP code used on node A is refused on node B", async () => {
    const user = await enrolledUser(nodes.a);
    nodes.b.clock.set(nodes.a.clock.now());
    const code = totpAt(user.secret, nodes.a.clock.now());
    expect((await finishMfa(nodes.a, await mfaToken(nodes.a, user.email), code)).statusCode).toBe(
      200,
    );
    const replay = await finishMfa(nodes.b, await mfaToken(nodes.b, user.email), code);
    expect(replay.statusCode).toBe(400);
    expect(replay.json()).toMatchObject({ code: "invalid_code" });
  });

  it("an MFA token used on node A is refused on node B, spending no code", async () => {
    const user = await enrolledUser(nodes.a);
    nodes.b.clock.set(nodes.a.clock.now());
    const [first, second] = user.backupCodes as [string, string];
    const token = await mfaToken(nodes.a, user.email);
    // A wrong code on A gives the token's claim back, so B still takes it once.
    expect((await finishMfa(nodes.a, token, "zzzzzzzz")).statusCode).toBe(400);
    expect((await finishMfa(nodes.b, token, first)).statusCode).toBe(200);
    const replay = await finishMfa(nodes.a, token, second);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ code: "invalid_token" });
    expect((await finishMfa(nodes.a, await mfaToken(nodes.a, user.email), second)).statusCode).toBe(
      200,
    );
  });
});

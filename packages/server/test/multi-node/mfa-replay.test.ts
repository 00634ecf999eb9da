import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers.js";
import { enrolledUser, finishMfa, passwordLogin, totpAt } from "../mfa-helpers.js";

/** One-time codes and MFA tokens are claimed in Redis, so the other node refuses a replay. */
describe("MFA replay across two nodes", () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp();
    b = await startTestApp({}, { shareWith: a });
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  const mfaToken = async (app: TestApp, email: string) =>
    (await passwordLogin(app, email)).json<{ mfaToken: string }>().mfaToken;

  it("a TOTP code used on node A is refused on node B", async () => {
    const user = await enrolledUser(a);
    b.clock.set(a.clock.now());
    const code = totpAt(user.secret, a.clock.now());
    expect((await finishMfa(a, await mfaToken(a, user.email), code)).statusCode).toBe(200);
    const replay = await finishMfa(b, await mfaToken(b, user.email), code);
    expect(replay.statusCode).toBe(400);
    expect(replay.json()).toMatchObject({ code: "invalid_code" });
  });

  it("an MFA token used on node A is refused on node B", async () => {
    const user = await enrolledUser(a);
    b.clock.set(a.clock.now());
    const token = await mfaToken(a, user.email);
    expect((await finishMfa(a, token, user.backupCodes[0] as string)).statusCode).toBe(200);
    const replay = await finishMfa(b, token, user.backupCodes[1] as string);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ code: "invalid_token" });
  });
});

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLink } from "../src/flows/mail-links.js";
import type { OneTimePurpose } from "../src/store/schema.js";
import { json, registerUser, startTestApp, type TestApp } from "./helpers.js";
import { enrolledUser, finishMfa, passwordLogin, STEP_MS, totpAt } from "./mfa-helpers.js";

/**
 * Every one-time secret a client presents, sent many times at once over HTTP: exactly one
 * use wins, whatever the database (on PostgreSQL the requests really overlap in the pool).
 */
describe("one-time secrets used concurrently", () => {
  /** Under the per-user limit of wrong MFA codes (5), so every loser is a plain refusal. */
  const MFA_TRIES = 5;
  const LINK_TRIES = 10;
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp({ rateLimit: { publicPerIp: 1000 } });
  });
  afterEach(() => app.close());

  const statuses = (answers: Array<{ statusCode: number }>) =>
    answers.map((a) => a.statusCode).sort();
  const codes = (answers: Array<{ statusCode: number; json(): unknown }>) =>
    new Set(
      answers.filter((a) => a.statusCode >= 400).map((a) => (a.json() as { code: string }).code),
    );

  const mailedToken = async (purpose: OneTimePurpose) => {
    const user = await registerUser(app);
    await app.svc.mailer.flush(); // registering mails a link of its own, which would void ours
    const { link } = await createLink(app.svc, user.user, purpose);
    return new URL(link).searchParams.get("token") as string;
  };
  const useAtOnce = (url: string, bodyOf: (i: number) => unknown, tries = LINK_TRIES) =>
    Promise.all(
      Array.from({ length: tries }, (_, i) =>
        app.http.inject({ method: "POST", url, ...json(bodyOf(i)) }),
      ),
    );
  /** One MFA token per try, so only the code itself is shared between them. */
  const mfaTokens = async (email: string) =>
    Promise.all(
      Array.from({ length: MFA_TRIES }, async () => {
        const res = await passwordLogin(app, email);
        return res.json<{ mfaToken: string }>().mfaToken;
      }),
    );

  it("an email verification link verifies once", async () => {
    const token = await mailedToken("verify_email");
    const answers = await useAtOnce("/auth/email/verify", () => ({ token }));
    expect(statuses(answers)).toEqual([200, ...Array(LINK_TRIES - 1).fill(400)]);
    expect(codes(answers)).toEqual(new Set(["invalid_or_expired_token"]));
  });

  it("a password reset link sets one password", async () => {
    const token = await mailedToken("reset_password");
    const answers = await useAtOnce("/auth/password/reset", (i) => ({
      token,
      newPassword: `a new password number ${i}`,
    }));
    expect(statuses(answers)).toEqual([204, ...Array(LINK_TRIES - 1).fill(400)]);
    expect(codes(answers)).toEqual(new Set(["invalid_or_expired_token"]));
  });

  it("a magic link starts one session", async () => {
    const token = await mailedToken("magic_link");
    const answers = await useAtOnce("/auth/magic-link/verify", () => ({ token }));
    expect(statuses(answers)).toEqual([200, ...Array(LINK_TRIES - 1).fill(400)]);
    expect(codes(answers)).toEqual(new Set(["invalid_or_expired_token"]));
  });

  it("a backup code finishes one MFA sign-in", async () => {
    const user = await enrolledUser(app);
    const code = user.backupCodes[0] as string;
    const answers = await Promise.all(
      (await mfaTokens(user.email)).map((token) => finishMfa(app, token, code)),
    );
    expect(statuses(answers)).toEqual([200, ...Array(MFA_TRIES - 1).fill(400)]);
    expect(codes(answers)).toEqual(new Set(["invalid_code"]));
  });

  it("a TOTP code finishes one MFA sign-in", async () => {
    const user = await enrolledUser(app);
    app.clock.advance(STEP_MS);
    const code = totpAt(user.secret, app.clock.now());
    const answers = await Promise.all(
      (await mfaTokens(user.email)).map((token) => finishMfa(app, token, code)),
    );
    expect(statuses(answers)).toEqual([200, ...Array(MFA_TRIES - 1).fill(400)]);
    expect(codes(answers)).toEqual(new Set(["invalid_code"]));
  });
});

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assertPasswordAcceptable } from "../src/domain/password-policy.js";
import { bearer, json, postJson, registerUser, startTestApp, type TestApp } from "./helpers.js";
import { linkToken, smtpConfig, useMailServer } from "./mail-server.js";
import { PASSWORD, stepUpToken } from "./mfa-helpers.js";

interface Problem {
  code: string;
  errors: Array<{ path: string; message: string }>;
}

describe("password rules (OWASP ASVS V6)", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    postJson(app, url, body, headers);
  const register = (body: Record<string, string>) =>
    post("/auth/register", { email: "new@example.com", ...body });

  /** 400 validation_failed with one error at `path` whose message matches `rule`. */
  const expectRefused = (
    res: { statusCode: number; json(): unknown },
    path: string,
    rule: RegExp,
  ) => {
    expect(res.statusCode).toBe(400);
    const problem = res.json() as Problem;
    expect(problem.code).toBe("validation_failed");
    expect(problem.errors).toHaveLength(1);
    expect(problem.errors[0]?.path).toBe(path);
    expect(problem.errors[0]?.message).toMatch(rule);
  };

  it("refuses the most common passwords, in any case and any Unicode form", async () => {
    for (const password of ["iloveyou", "Baseball", "TRUSTNO1", "ｓｕｎｓｈｉｎｅ", "qwertyuiop"]) {
      expectRefused(await register({ password }), "password", /common password/);
    }
    // Common words inside a longer passphrase are fine: no composition rules either.
    expect((await register({ password: "iloveyou baseball sunshine" })).statusCode).toBe(201);
  });

  it("refuses the username, the email and its local part (case-insensitively)", async () => {
    expectRefused(
      await register({ username: "Marguerite", password: "mARGUERITE" }),
      "password",
      /same as your username/,
    );
    expectRefused(
      await register({ email: "longname@example.com", password: "LongName@Example.com" }),
      "password",
      /same as your email address/,
    );
    expectRefused(
      await register({ email: "longname@example.com", password: "LONGNAME" }),
      "password",
      /same as your email address/,
    );
    expect((await register({ username: "Marguerite", password: "Marguerite!" })).statusCode).toBe(
      201,
    );
  });

  it("counts length in code points after NFKC and never truncates", async () => {
    expectRefused(await register({ password: "1234567" }), "password", /at least 8/);
    // Four emoji are four characters, not eight UTF-16 units.
    expectRefused(await register({ password: "😀😀😀😀" }), "password", /at least 8/);
    const long = `${"a b c d ".repeat(16)}`; // 128 code points: the default maximum
    expect((await register({ email: "long@example.com", password: long })).statusCode).toBe(201);
    expectRefused(await register({ password: `${long}x` }), "password", /at most 128/);
    // The whole password counts: one more character makes another password.
    const login = await post("/auth/login", {
      identifier: "long@example.com",
      password: long.slice(0, -1),
    });
    expect(login.statusCode).toBe(401);
  });

  it("hashes the NFKC form: compatibility and composed forms sign in alike", async () => {
    const res = await register({
      email: "nfkc@example.com",
      password: "ｆｕｌｌ ｗｉｄｔｈ ｐａｓｓ",
    });
    expect(res.statusCode).toBe(201);
    for (const typed of ["full width pass", "ｆｕｌｌ ｗｉｄｔｈ ｐａｓｓ"]) {
      const login = await post("/auth/login", { identifier: "nfkc@example.com", password: typed });
      expect(login.statusCode).toBe(200);
    }
    await register({ email: "ligature@example.com", password: "ﬁne caf\u00e9 table" });
    const login = await post("/auth/login", {
      identifier: "ligature@example.com",
      password: "fine cafe\u0301 table",
    });
    expect(login.statusCode).toBe(200);
  });

  it("applies at setup, password change and guest upgrade", async () => {
    expectRefused(
      await post("/auth/setup", { username: "root_admin", password: "Root_Admin" }),
      "password",
      /username/,
    );
    const user = await registerUser(app, { email: "changer@example.com", password: PASSWORD });
    const stepUp = await stepUpToken(app, user.accessToken);
    const headers = { ...bearer(user.accessToken), "x-step-up-token": stepUp };
    const change = (newPassword: string) =>
      post("/auth/password/change", { currentPassword: PASSWORD, newPassword }, headers);
    expectRefused(await change("password1"), "newPassword", /common password/);
    expectRefused(await change("Changer"), "newPassword", /at least 8/);
    expectRefused(await change("CHANGER@example.com"), "newPassword", /email address/);
    expect((await change("a much better passphrase")).statusCode).toBe(200);

    const guest = (await post("/auth/guest", { username: "wanderer_42" })).json<{
      accessToken: string;
    }>();
    const upgrade = (body: Record<string, string>) =>
      post(
        "/auth/guest/upgrade",
        { email: "wanderer@example.com", ...body },
        bearer(guest.accessToken),
      );
    expectRefused(await upgrade({ password: "WANDERER_42" }), "password", /username/);
    expectRefused(await upgrade({ password: "football" }), "password", /common password/);
    expect((await upgrade({ password: "wandering far away" })).statusCode).toBe(200);
  });

  it("is exported for the other flows that set passwords", async () => {
    const rules = app.svc.config.password;
    await expect(
      assertPasswordAcceptable("dragon12", {}, rules, "newPassword"),
    ).rejects.toMatchObject({
      code: "validation_failed",
      extra: { errors: [{ path: "newPassword" }] },
    });
    await expect(
      assertPasswordAcceptable("unusual words here", { username: "x" }, rules),
    ).resolves.toBeUndefined();
  });
});

describe("password rules at reset", () => {
  const mail = useMailServer();

  it("refuses common passwords and the owner's names; a refusal leaves the link usable", async () => {
    const app = await startTestApp(smtpConfig(mail.server));
    try {
      await registerUser(app, { email: "resetter.name@example.com", username: "resetter_99" });
      const forgot = await app.http.inject({
        method: "POST",
        url: "/auth/password/forgot",
        ...json({ email: "resetter.name@example.com" }),
      });
      expect(forgot.statusCode).toBe(202);
      await app.svc.mailer.flush();
      const message = mail.server
        .to("resetter.name@example.com")
        .find((m) => m.subject.includes("reset"));
      const token = linkToken(message as never, "reset-password");
      const reset = (newPassword: string) =>
        app.http.inject({
          method: "POST",
          url: "/auth/password/reset",
          ...json({ token, newPassword }),
        });
      for (const [newPassword, rule] of [
        ["letmein1", /common password/],
        ["Resetter_99", /username/],
        ["RESETTER.NAME", /email address/],
      ] as const) {
        const res = await reset(newPassword);
        expect(res.statusCode).toBe(400);
        expect(res.json<Problem>().errors).toEqual([
          { path: "newPassword", message: expect.stringMatching(rule) },
        ]);
      }
      expect((await reset("a fresh and private phrase")).statusCode).toBe(204);
    } finally {
      await app.close();
    }
  });
});

describe("optional strength estimate (zxcvbn-ts)", () => {
  let app: TestApp;
  afterEach(() => app.close());

  it("is off by default: a weak but uncommon password is accepted", async () => {
    app = await startTestApp();
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/register",
      ...json({ email: "weak@example.com", password: "aaaaaaaa1" }),
    });
    expect(res.statusCode).toBe(201);
  });

  it("refuses passwords below the configured score, naming the score", async () => {
    app = await startTestApp({ password: { minStrengthScore: 3 } });
    const register = (email: string, password: string) =>
      app.http.inject({ method: "POST", url: "/auth/register", ...json({ email, password }) });
    const weak = await register("weak@example.com", "aaaaaaaa1");
    expect(weak.statusCode).toBe(400);
    expect(weak.json<Problem>().errors[0]?.message).toMatch(
      /too easy to guess \(strength [0-2] of 4, at least 3 needed\)/,
    );
    // zxcvbn weighs the user's own details too: this is strong for anyone but its owner.
    const own = await app.http.inject({
      method: "POST",
      url: "/auth/register",
      ...json({
        email: "otter@example.com",
        username: "quixoticotter",
        password: "quixoticotter12",
      }),
    });
    expect(own.statusCode).toBe(400);
    expect((await register("someone@example.com", "quixoticotter12")).statusCode).toBe(201);
    const strong = await register("strong@example.com", "violet tractor 93 lighthouse");
    expect(strong.statusCode).toBe(201);
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bearer, json, startTestApp, type TestApp } from "./helpers.js";
import { linkToken, smtpConfig, useMailServer } from "./mail-server.js";
import { enrolledUser, PASSWORD, STEP_MS, stepUpToken, totpAt } from "./mfa-helpers.js";

const SUBJECT = "Acme: a sign-in got past its first step";
const STRANGER = "192.0.2.66";
const CHROME_MAC =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/** A wrong code, a right password: the owner hears that the password is known, once per sign-in. */
describe("notice of a failed second step", () => {
  const mail = useMailServer();
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      ...smtpConfig(mail.server),
      mail: { ...smtpConfig(mail.server).mail, perEmail: 2 },
    });
  });
  afterAll(() => app.close());
  beforeEach(() => mail.server.clear());

  const notices = async (address: string) => {
    await app.svc.mailer.flush();
    return mail.server.to(address).filter((m) => m.subject === SUBJECT);
  };
  const from = (remoteAddress: string) => ({
    remoteAddress,
    headers: { "user-agent": CHROME_MAC },
  });
  const signIn = async (identifier: string, remoteAddress = STRANGER) => {
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/login",
      remoteAddress,
      ...json({ identifier, password: PASSWORD }),
    });
    return res.json<{ mfaToken: string }>().mfaToken;
  };
  const answer = (mfaToken: string, code: string, remoteAddress = STRANGER) =>
    app.http.inject({
      method: "POST",
      url: "/auth/login/mfa",
      ...from(remoteAddress),
      headers: { ...from(remoteAddress).headers, "x-mfa-token": mfaToken, ...json({}).headers },
      payload: JSON.stringify({ code }),
    });
  const wrongCode = (secret: string) =>
    totpAt(secret, app.clock.now()) === "000000" ? "111111" : "000000";

  it("mails the owner once per MFA token, naming the address and device; the answers say nothing of it", async () => {
    const user = await enrolledUser(app);
    const token = await signIn(user.email);
    const first = await answer(token, wrongCode(user.secret));
    const second = await answer(token, wrongCode(user.secret));
    expect(first.statusCode).toBe(400);
    expect([second.statusCode, second.json()]).toEqual([first.statusCode, first.json()]);
    const [notice, ...more] = await notices(user.email);
    expect(more).toHaveLength(0);
    expect(notice?.to).toEqual([user.email]);
    expect(notice?.body).toContain("Your password was entered correctly, but the second step");
    expect(notice?.body).toContain(`From: ${STRANGER} (Chrome 131 on Mac OS 10)`);
    expect(notice?.body).toContain("When: 2026-01-01T");
    // The failure stays audited.
    await app.svc.auditLog.flush();
    const audited = await app.svc.store.audit.list({
      userId: user.userId,
      type: "mfa_failed",
      limit: 10,
    });
    expect(audited).toHaveLength(2);
  });

  it("is sent from an address the account signed in from before too", async () => {
    const user = await enrolledUser(app); // its session is from 127.0.0.1
    const token = await signIn(user.email, "127.0.0.1");
    expect((await answer(token, wrongCode(user.secret), "127.0.0.1")).statusCode).toBe(400);
    expect(await notices(user.email)).toHaveLength(1);
  });

  it("names the magic link when that was the first step", async () => {
    const user = await enrolledUser(app);
    await app.http.inject({
      method: "POST",
      url: "/auth/magic-link",
      ...json({ email: user.email }),
    });
    await app.svc.mailer.flush();
    const link = mail.server.to(user.email).find((m) => m.subject === "Acme: your sign-in link");
    const pending = await app.http.inject({
      method: "POST",
      url: "/auth/magic-link/verify",
      ...json({ token: linkToken(link as never, "magic-link") }),
    });
    const token = pending.json<{ mfaToken: string }>().mfaToken;
    expect((await answer(token, wrongCode(user.secret))).statusCode).toBe(400);
    const [notice] = await notices(user.email);
    expect(notice?.body).toContain("A sign-in link mailed to this address was used");
    expect(notice?.body).toContain("secure your email account");
  });

  it("is not sent for a right code, nor for a used, expired or forged token", async () => {
    const user = await enrolledUser(app);
    const used = await signIn(user.email);
    expect((await answer(used, totpAt(user.secret, app.clock.now()))).statusCode).toBe(200);
    app.clock.advance(STEP_MS);
    expect((await answer(used, wrongCode(user.secret))).json()).toMatchObject({
      code: "invalid_token",
    });
    const late = await signIn(user.email);
    app.clock.advance(11 * 60_000);
    expect((await answer(late, wrongCode(user.secret))).json()).toMatchObject({
      code: "token_expired",
    });
    const forged = `${used.slice(0, -4)}AAAA`;
    expect((await answer(forged, wrongCode(user.secret))).statusCode).toBe(401);
    expect((await answer("not-a-token", wrongCode(user.secret))).statusCode).toBe(401);
    expect(await notices(user.email)).toHaveLength(0);
  });

  it("has a per-address budget of its own, which leaves the other notices theirs", async () => {
    const user = await enrolledUser(app);
    for (let i = 0; i < 3; i++) {
      const token = await signIn(user.email, `192.0.2.${10 + i}`);
      expect((await answer(token, wrongCode(user.secret), `192.0.2.${10 + i}`)).statusCode).toBe(
        400,
      );
    }
    expect(await notices(user.email)).toHaveLength(2); // mail.perEmail
    const regenerated = await app.http.inject({
      method: "POST",
      url: "/mfa/backup-codes",
      headers: {
        ...bearer(user.accessToken),
        "x-step-up-token": await stepUpToken(app, user.accessToken),
        ...json({}).headers,
      },
      payload: "{}",
    });
    expect(regenerated.statusCode).toBe(200);
    await app.svc.mailer.flush();
    expect(mail.server.to(user.email).map((m) => m.body)).toContainEqual(
      expect.stringContaining("New backup codes were made"),
    );
  });

  it("answers before the notice is decided", async () => {
    const user = await enrolledUser(app);
    const replay = app.svc.replay;
    const claim = replay.claim;
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    replay.claim = async (key, ttlMs, now) => {
      if (key.startsWith("mfa-failed-notice:")) await held;
      return claim.call(replay, key, ttlMs, now);
    };
    try {
      const token = await signIn(user.email);
      // Were the once-per-token check on the request path, this would hang until the timeout.
      expect((await answer(token, wrongCode(user.secret))).statusCode).toBe(400);
      release();
      expect(await notices(user.email)).toHaveLength(1);
    } finally {
      release();
      replay.claim = claim;
    }
  });
});

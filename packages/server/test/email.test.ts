import { setTimeout as delay } from "node:timers/promises";
import { hash as argon2 } from "@node-rs/argon2";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createLink } from "../src/flows/mail-links.js";
import type { OneTimePurpose } from "../src/store/schema.js";
import {
  bearer,
  holdPasswordChecks,
  json,
  openAppDb,
  registerUser,
  startTestApp,
  TEST_DB,
  type TestApp,
} from "./helpers.js";
import { linkToken, smtpConfig, useMailServer } from "./mail-server.js";
import { enrolledUser, PASSWORD, passwordLogin, stepUpToken, totpAt } from "./mfa-helpers.js";

const MINUTE = 60_000;
const post = (app: TestApp, url: string, body: unknown, headers = {}) =>
  app.http.inject({
    method: "POST",
    url,
    ...json(body),
    headers: { ...json(body).headers, ...headers },
  });
const email = () => `mail-${Math.random().toString(36).slice(2, 10)}@example.com`;

describe("mailed links over real SMTP", () => {
  const mail = useMailServer();
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      ...smtpConfig(mail.server),
      mail: { ...smtpConfig(mail.server).mail, perIp: 1000 },
      rateLimit: { publicPerIp: 1000 },
    });
  });
  afterAll(() => app.close());
  beforeEach(() => mail.server.clear());

  /** Everything the app queued has been handed to the SMTP server. */
  const delivered = async (address: string) => {
    await app.svc.mailer.flush();
    return mail.server.to(address);
  };

  describe("email verification", () => {
    it("register mails a link that verifies the address once", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      expect(user.user).toMatchObject({ emailVerified: false });
      const [message] = await delivered(address);
      expect(message?.subject).toBe("Acme: confirm your email address");
      expect(message?.from).toBe("security@acme.test");
      expect(message?.body).toContain("http://latchkey.test/ui/verify-email?token=");
      expect(message?.raw).toMatch(/Content-Type: text\/html/);

      const token = linkToken(message as never, "verify-email");
      const ok = await post(app, "/auth/email/verify", { token });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toEqual({ emailVerified: true, email: address });
      const me = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
      expect(me.json()).toMatchObject({ emailVerified: true });

      const again = await post(app, "/auth/email/verify", { token });
      expect(again.statusCode).toBe(400);
      expect(again.json()).toMatchObject({ code: "invalid_or_expired_token" });
    });

    it("refuses an unknown token and an expired link", async () => {
      const unknown = await post(app, "/auth/email/verify", { token: "x".repeat(43) });
      expect(unknown.json()).toMatchObject({ status: 400, code: "invalid_or_expired_token" });

      const address = email();
      await registerUser(app, { email: address });
      const [message] = await delivered(address);
      app.clock.advance(24 * 60 * MINUTE + 1);
      const late = await post(app, "/auth/email/verify", {
        token: linkToken(message as never, "verify-email"),
      });
      expect(late.json()).toMatchObject({ code: "invalid_or_expired_token" });
    });

    it("resend answers 202 the same for every address; only an unverified account gets mail", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      mail.server.clear();
      const known = await post(app, "/auth/email/resend", { email: address.toUpperCase() });
      const unknown = await post(app, "/auth/email/resend", { email: email() });
      expect(known.statusCode).toBe(202);
      expect(unknown.statusCode).toBe(202);
      expect(known.body).toBe(unknown.body);
      expect(await delivered(address)).toHaveLength(1);
      expect(mail.server.inbox).toHaveLength(1);
    });

    it("a newer link voids the older one", async () => {
      const address = email();
      await registerUser(app, { email: address });
      const [first] = await delivered(address);
      await post(app, "/auth/email/resend", { email: address });
      const [, second] = await delivered(address);
      const old = await post(app, "/auth/email/verify", {
        token: linkToken(first as never, "verify-email"),
      });
      expect(old.json()).toMatchObject({ code: "invalid_or_expired_token" });
      const fresh = await post(app, "/auth/email/verify", {
        token: linkToken(second as never, "verify-email"),
      });
      expect(fresh.statusCode).toBe(200);
    });

    it("changing the email unverifies it, mails the new address a link and the old one a notice", async () => {
      const oldAddress = email();
      const newAddress = email();
      const user = await registerUser(app, { email: oldAddress });
      const [oldLink] = await delivered(oldAddress);
      const res = await app.http.inject({
        method: "PATCH",
        url: "/users/me",
        headers: { ...bearer(user.accessToken), ...json({}).headers },
        payload: JSON.stringify({ email: newAddress }),
      });
      expect(res.json()).toMatchObject({ user: { email: newAddress, emailVerified: false } });

      const [, notice] = await delivered(oldAddress);
      expect(notice?.subject).toBe("Acme: your email address was changed");
      expect(notice?.body).toContain(`${newAddress[0]}***@example.com`);
      expect(notice?.body).not.toContain(newAddress);
      // The link mailed to the old address no longer verifies anything.
      const stale = await post(app, "/auth/email/verify", {
        token: linkToken(oldLink as never, "verify-email"),
      });
      expect(stale.json()).toMatchObject({ code: "invalid_or_expired_token" });
      const [link] = await delivered(newAddress);
      expect(
        (await post(app, "/auth/email/verify", { token: linkToken(link as never, "verify-email") }))
          .statusCode,
      ).toBe(200);
    });
  });

  describe("password reset", () => {
    it("answers 202 with the same body for known and unknown addresses; only the known one gets mail", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      mail.server.clear();
      const known = await post(app, "/auth/password/forgot", { email: address });
      const unknown = await post(app, "/auth/password/forgot", { email: email() });
      expect([known.statusCode, unknown.statusCode]).toEqual([202, 202]);
      expect(known.body).toBe(unknown.body);
      expect(known.headers["content-type"]).toBe(unknown.headers["content-type"]);
      const messages = await delivered(address);
      expect(messages.map((m) => m.subject)).toEqual(["Acme: reset your password"]);
      expect(mail.server.inbox).toHaveLength(1);
    });

    it("answers without waiting for the account lookup or the mail", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      const users = app.svc.store.users;
      const findByEmail = users.findByEmail;
      let release = () => {};
      const lookupHeld = new Promise<void>((r) => {
        release = r;
      });
      let lookups = 0;
      users.findByEmail = async (e: string) => {
        lookups++;
        await lookupHeld;
        return findByEmail.call(users, e);
      };
      try {
        // Were the lookup on the request path, this would hang until the test timed out.
        const res = await post(app, "/auth/password/forgot", { email: address });
        expect(res.statusCode).toBe(202);
        const magic = await post(app, "/auth/magic-link", { email: address });
        expect(magic.statusCode).toBe(202);
        release();
        expect((await delivered(address)).map((m) => m.subject)).toContain(
          "Acme: your sign-in link",
        );
        expect(lookups).toBe(2);
      } finally {
        release();
        users.findByEmail = findByEmail;
      }
    });

    it("a reset sets the password, ends every session, works once and mails a notice", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const reset = (await delivered(address)).find((m) => m.subject.includes("reset"));
      const token = linkToken(reset as never, "reset-password");
      mail.server.clear();

      const res = await post(app, "/auth/password/reset", {
        token,
        newPassword: "a brand new passphrase",
      });
      expect(res.statusCode).toBe(204);
      const refresh = await post(app, "/auth/refresh", { refreshToken: user.refreshToken });
      expect(refresh.json()).toMatchObject({ status: 401 });
      const me = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
      expect(me.statusCode).toBe(401);
      expect((await passwordLogin(app, address)).statusCode).toBe(401);
      const login = await passwordLogin(app, address, "a brand new passphrase");
      expect(login.statusCode).toBe(200);
      // Following a mailed link proved the mailbox.
      expect(login.json()).toMatchObject({ user: { emailVerified: true } });

      const again = await post(app, "/auth/password/reset", {
        token,
        newPassword: "yet another one",
      });
      expect(again.json()).toMatchObject({ status: 400, code: "invalid_or_expired_token" });
      const [notice] = await delivered(address);
      expect(notice?.subject).toBe("Acme: your password was changed");
      expect(notice?.body).toContain("127.0.0.1");
    });

    it("a reset deletes the API tokens, whose creation was mailed to the owner", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      const [verification] = await delivered(address);
      await post(app, "/auth/email/verify", {
        token: linkToken(verification as never, "verify-email"),
      });
      mail.server.clear();
      const created = await post(
        app,
        "/tokens",
        { name: "ci", scopes: ["profile:read"] },
        bearer(user.accessToken),
      );
      const { token } = created.json<{ token: string }>();
      const [notice] = await delivered(address);
      expect(notice?.body).toContain('An API token named "ci" was created.');
      const me = () => app.http.inject({ url: "/users/me", headers: bearer(token) });
      expect((await me()).statusCode).toBe(200); // now cached

      await post(app, "/auth/password/forgot", { email: address });
      const reset = (await delivered(address)).find((m) => m.subject.includes("reset"));
      const res = await post(app, "/auth/password/reset", {
        token: linkToken(reset as never, "reset-password"),
        newPassword: "a brand new passphrase",
      });
      expect(res.statusCode).toBe(204);
      expect((await me()).json()).toMatchObject({ status: 401, code: "invalid_token" });
    });

    it("a sign-in with the old password that a reset overtakes keeps no session", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const reset = (await delivered(address)).find((m) => m.subject.includes("reset"));
      const token = linkToken(reset as never, "reset-password");
      // The sign-in has read the account and proved the old password; then the reset ends
      // every session.
      const held = holdPasswordChecks(app);
      try {
        const login = passwordLogin(app, address);
        await held.checking;
        const res = await post(app, "/auth/password/reset", { token, newPassword: "newer words" });
        expect(res.statusCode).toBe(204);
        held.release();
        expect((await login).json()).toMatchObject({ status: 401, code: "session_revoked" });
      } finally {
        held.restore();
      }
      const db = await openAppDb(app);
      try {
        const live = await db.kysely
          .selectFrom("sessions")
          .select("id")
          .where("user_id", "=", user.user.id)
          .where("revoked_at", "is", null)
          .execute();
        expect(live).toEqual([]);
      } finally {
        await db.close();
      }
    });

    it("a refused new password leaves the link usable", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const reset = (await delivered(address)).find((m) => m.subject.includes("reset"));
      const token = linkToken(reset as never, "reset-password");
      const short = await post(app, "/auth/password/reset", { token, newPassword: "short" });
      expect(short.json()).toMatchObject({ status: 400, code: "validation_failed" });
      const ok = await post(app, "/auth/password/reset", { token, newPassword: "long enough now" });
      expect(ok.statusCode).toBe(204);
    });

    it("the link expires after 30 minutes", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const reset = (await delivered(address)).find((m) => m.subject.includes("reset"));
      app.clock.advance(30 * MINUTE + 1);
      const res = await post(app, "/auth/password/reset", {
        token: linkToken(reset as never, "reset-password"),
        newPassword: "a brand new passphrase",
      });
      expect(res.json()).toMatchObject({ code: "invalid_or_expired_token" });
    });

    it("a password change voids an outstanding reset link", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const reset = (await delivered(address)).find((m) => m.subject.includes("reset"));
      const stepUp = await post(
        app,
        "/auth/step-up",
        { password: PASSWORD },
        bearer(user.accessToken),
      );
      const change = await post(
        app,
        "/auth/password/change",
        { currentPassword: PASSWORD, newPassword: "changed on purpose" },
        { ...bearer(user.accessToken), "x-step-up-token": stepUp.json().stepUpToken },
      );
      expect(change.statusCode).toBe(200);
      const res = await post(app, "/auth/password/reset", {
        token: linkToken(reset as never, "reset-password"),
        newPassword: "an attacker's choice",
      });
      expect(res.json()).toMatchObject({ code: "invalid_or_expired_token" });
      const notices = (await delivered(address)).filter((m) => m.subject.includes("changed"));
      expect(notices).toHaveLength(1);
    });
  });

  describe("magic links", () => {
    it("signs in once with amr email, and verifies the address", async () => {
      const address = email();
      await registerUser(app, { email: address });
      mail.server.clear();
      const res = await post(app, "/auth/magic-link", { email: address });
      expect(res.statusCode).toBe(202);
      const [message] = (await delivered(address)).filter((m) => m.subject.includes("sign-in"));
      const token = linkToken(message as never, "magic-link");

      const login = await post(app, "/auth/magic-link/verify", { token });
      expect(login.statusCode).toBe(200);
      const body = login.json();
      expect(body.user).toMatchObject({ email: address, emailVerified: true });
      expect(decodeJwt(body.accessToken)).toMatchObject({ amr: ["email"], emailVerified: true });
      const again = await post(app, "/auth/magic-link/verify", { token });
      expect(again.json()).toMatchObject({ status: 400, code: "invalid_or_expired_token" });
    });

    it("claiming an address nobody had proven ends the password and sessions someone set up", async () => {
      const address = email();
      // Someone registers the victim's address with a password of their own...
      const squatter = await registerUser(app, { email: address, password: PASSWORD });
      mail.server.clear();
      // ...and the victim, whose address it is, signs in from the mailbox.
      await post(app, "/auth/magic-link", { email: address });
      const [message] = (await delivered(address)).filter((m) => m.subject.includes("sign-in"));
      const login = await post(app, "/auth/magic-link/verify", {
        token: linkToken(message as never, "magic-link"),
      });
      expect(login.statusCode).toBe(200);
      expect(login.json().user).toMatchObject({ id: squatter.user.id, emailVerified: true });
      expect((await passwordLogin(app, address)).statusCode).toBe(401);
      const old = await app.http.inject({
        url: "/users/me",
        headers: bearer(squatter.accessToken),
      });
      expect(old.json()).toMatchObject({ code: "session_revoked" });
      const mine = await app.http.inject({
        url: "/users/me",
        headers: bearer(login.json().accessToken),
      });
      expect(mine.statusCode).toBe(200);
    });

    it("an account that proved an earlier address stays whole when its new one signs in", async () => {
      const address = email();
      const user = await registerUser(app, { email: address, password: PASSWORD });
      const [verification] = await delivered(address);
      await post(app, "/auth/email/verify", {
        token: linkToken(verification as never, "verify-email"),
      });
      const moved = email();
      const patched = await app.http.inject({
        method: "PATCH",
        url: "/users/me",
        ...json({ email: moved }),
        headers: { ...json({}).headers, ...bearer(user.accessToken) },
      });
      expect(patched.json()).toMatchObject({ user: { email: moved, emailVerified: false } });
      await post(app, "/auth/magic-link", { email: moved });
      const [message] = (await delivered(moved)).filter((m) => m.subject.includes("sign-in"));
      const login = await post(app, "/auth/magic-link/verify", {
        token: linkToken(message as never, "magic-link"),
      });
      expect(login.json().user).toMatchObject({ id: user.user.id, emailVerified: true });
      // Not a squatter's account: its password (and session) stay.
      expect((await passwordLogin(app, moved)).statusCode).toBe(200);
      const mine = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
      expect(mine.statusCode).toBe(200);
    });

    it("a link the account's IP rules refuse changes nothing and stays usable", async () => {
      const address = email();
      const user = await registerUser(app, { email: address, password: PASSWORD });
      const office = "10.9.9.9";
      const patched = await app.http.inject({
        method: "PATCH",
        url: "/users/me",
        ...json({ allowedIps: [office] }),
        headers: { ...json({}).headers, ...bearer(user.accessToken) },
        remoteAddress: office,
      });
      expect(patched.statusCode).toBe(200);
      await post(app, "/auth/magic-link", { email: address });
      const [message] = (await delivered(address)).filter((m) => m.subject.includes("sign-in"));
      const token = linkToken(message as never, "magic-link");
      const refused = await post(app, "/auth/magic-link/verify", { token });
      expect(refused.json()).toMatchObject({ status: 403, code: "ip_not_allowed" });
      const fromOffice = (url: string, body: unknown) =>
        app.http.inject({ method: "POST", url, ...json(body), remoteAddress: office });
      // The unproven address was not claimed: the password still works, the link too.
      const login = await fromOffice("/auth/login", { identifier: address, password: PASSWORD });
      expect(login.statusCode).toBe(200);
      expect((await fromOffice("/auth/magic-link/verify", { token })).statusCode).toBe(200);
    });

    it("answers unknown addresses the same and mails nothing", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      mail.server.clear();
      const known = await post(app, "/auth/magic-link", { email: address });
      const unknown = await post(app, "/auth/magic-link", { email: email() });
      expect(known.body).toBe(unknown.body);
      await app.svc.mailer.flush();
      expect(mail.server.inbox.map((m) => m.to[0])).toEqual([address]);
    });

    it("leaves MFA users at MFA pending", async () => {
      const user = await enrolledUser(app);
      await post(app, "/auth/magic-link", { email: user.email });
      const [message] = (await delivered(user.email)).filter((m) => m.subject.includes("sign-in"));
      const res = await post(app, "/auth/magic-link/verify", {
        token: linkToken(message as never, "magic-link"),
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ mfaRequired: true, expiresIn: 600 });
      expect(res.json().accessToken).toBeUndefined();
    });

    it("expires after 15 minutes", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await post(app, "/auth/magic-link", { email: address });
      const [message] = (await delivered(address)).filter((m) => m.subject.includes("sign-in"));
      app.clock.advance(15 * MINUTE + 1);
      const res = await post(app, "/auth/magic-link/verify", {
        token: linkToken(message as never, "magic-link"),
      });
      expect(res.json()).toMatchObject({ code: "invalid_or_expired_token" });
    });

    it("a password reset voids an outstanding magic link", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await post(app, "/auth/magic-link", { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const messages = await delivered(address);
      const magic = messages.find((m) => m.subject.includes("sign-in"));
      const reset = messages.find((m) => m.subject.includes("reset"));
      await post(app, "/auth/password/reset", {
        token: linkToken(reset as never, "reset-password"),
        newPassword: "a brand new passphrase",
      });
      const res = await post(app, "/auth/magic-link/verify", {
        token: linkToken(magic as never, "magic-link"),
      });
      expect(res.json()).toMatchObject({ code: "invalid_or_expired_token" });
    });
  });

  describe("links and account changes", () => {
    it("an email change voids outstanding reset and magic links, even if the address comes back", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      await post(app, "/auth/magic-link", { email: address });
      const messages = await delivered(address);
      const patch = (to: string) =>
        app.http.inject({
          method: "PATCH",
          url: "/users/me",
          headers: { ...bearer(user.accessToken), ...json({}).headers },
          payload: JSON.stringify({ email: to }),
        });
      expect((await patch(email())).statusCode).toBe(200);
      expect((await patch(address)).statusCode).toBe(200);
      const reset = messages.find((m) => m.subject.includes("reset"));
      const magic = messages.find((m) => m.subject.includes("sign-in"));
      const resetAnswer = await post(app, "/auth/password/reset", {
        token: linkToken(reset as never, "reset-password"),
        newPassword: "an attacker's choice",
      });
      expect(resetAnswer.json()).toMatchObject({ code: "invalid_or_expired_token" });
      const magicAnswer = await post(app, "/auth/magic-link/verify", {
        token: linkToken(magic as never, "magic-link"),
      });
      expect(magicAnswer.json()).toMatchObject({ code: "invalid_or_expired_token" });
    });

    it("a disabled account gets no links, and a link mailed before cannot reset it", async () => {
      const address = email();
      const user = await registerUser(app, { email: address });
      await post(app, "/auth/password/forgot", { email: address });
      const [reset] = (await delivered(address)).filter((m) => m.subject.includes("reset"));
      const db = await openAppDb(app);
      await db.kysely
        .updateTable("users")
        .set({ disabled: 1 })
        .where("id", "=", user.user.id)
        .execute();
      await db.close();
      mail.server.clear();
      await post(app, "/auth/password/forgot", { email: address });
      await post(app, "/auth/magic-link", { email: address });
      expect(await delivered(address)).toHaveLength(0);
      const res = await post(app, "/auth/password/reset", {
        token: linkToken(reset as never, "reset-password"),
        newPassword: "a brand new passphrase",
      });
      expect(res.json()).toMatchObject({ status: 403, code: "account_disabled" });
    });
  });

  describe("security notices", () => {
    it("MFA turned on, new backup codes and MFA turned off each mail the owner", async () => {
      const user = await enrolledUser(app);
      const stepUp = await post(
        app,
        "/auth/step-up",
        { code: totpAt(user.secret, app.clock.now()) },
        bearer(user.accessToken),
      );
      const grant = { ...bearer(user.accessToken), "x-step-up-token": stepUp.json().stepUpToken };
      expect((await post(app, "/mfa/backup-codes", {}, grant)).statusCode).toBe(200);
      expect((await post(app, "/mfa/totp/disable", {}, grant)).statusCode).toBe(204);
      const notices = (await delivered(user.email)).filter((m) => m.subject.includes("security"));
      expect(
        notices.map((m) => /(Two-factor[^.]*|New backup codes[^;]*)/.exec(m.body)?.[1]),
      ).toEqual([
        "Two-factor authentication was turned on",
        "New backup codes were made",
        "Two-factor authentication was turned off",
      ]);
    });
  });

  describe("mail failures", () => {
    it("are retried, never fail the request, and /readyz shows only a coarse status", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      const before = app.svc.mailer.stats();
      mail.server.failNext(2);
      expect((await post(app, "/auth/password/forgot", { email: address })).statusCode).toBe(202);
      const [reset] = (await delivered(address)).filter((m) => m.subject.includes("reset"));
      expect(reset).toBeDefined();
      expect(app.svc.mailer.stats()).toMatchObject({
        retried: before.retried + 2,
        failed: before.failed,
        lastError: "EMESSAGE 451",
      });
      const ready = await app.http.inject({ url: "/readyz" });
      expect(ready.statusCode).toBe(200);
      // Counts would move with mail to real accounts: an enumeration oracle. None are shown.
      expect(ready.json().mail).toEqual({ transport: "smtp", status: "ok" });
    });

    it("give up after mail.maxAttempts, count the loss, and show failing until a send succeeds", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      mail.server.clear();
      const before = app.svc.mailer.stats();
      mail.server.failNext(4);
      expect((await post(app, "/auth/magic-link", { email: address })).statusCode).toBe(202);
      expect(await delivered(address)).toHaveLength(0);
      expect(app.svc.mailer.stats()).toMatchObject({ failed: before.failed + 1, pending: 0 });
      const failing = await app.http.inject({ url: "/readyz" });
      expect(failing.statusCode).toBe(200);
      expect(failing.json().mail).toEqual({ transport: "smtp", status: "failing" });

      await post(app, "/auth/magic-link", { email: address });
      expect(await delivered(address)).toHaveLength(1);
      expect((await app.http.inject({ url: "/readyz" })).json().mail.status).toBe("ok");
    });

    it("a permanent refusal (5xx) is not retried", async () => {
      const address = email();
      await registerUser(app, { email: address });
      await delivered(address);
      const before = app.svc.mailer.stats();
      mail.server.failNext(1, 550);
      await post(app, "/auth/password/forgot", { email: address });
      await delivered(address);
      expect(app.svc.mailer.stats()).toMatchObject({
        retried: before.retried,
        failed: before.failed + 1,
        lastError: "EMESSAGE 550",
      });
    });
  });
});

describe("when email verification is required", () => {
  const mail = useMailServer();
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ ...smtpConfig(mail.server), emailVerificationRequired: true });
  });
  afterAll(() => app.close());

  it("register answers 202 without tokens; login is refused until the link is followed", async () => {
    const address = email();
    const res = await post(app, "/auth/register", { email: address, password: PASSWORD });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ verificationRequired: true });
    expect(res.headers["set-cookie"]).toBeUndefined();

    const refused = await passwordLogin(app, address);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: "email_not_verified" });

    await app.svc.mailer.flush();
    const [message] = mail.server.to(address);
    await post(app, "/auth/email/verify", { token: linkToken(message as never, "verify-email") });
    const login = await passwordLogin(app, address);
    expect(login.statusCode).toBe(200);
    expect(decodeJwt(login.json().accessToken)).toMatchObject({ emailVerified: true });
  });

  it("a taken address gets the same 202, and its owner a mail instead of a second account", async () => {
    const address = email();
    await post(app, "/auth/register", { email: address, password: PASSWORD });
    const again = await post(app, "/auth/register", {
      email: address,
      password: "another password",
    });
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual({ verificationRequired: true });
    await app.svc.mailer.flush();
    // Two messages in flight at once: either may land first.
    expect(
      mail.server
        .to(address)
        .map((m) => m.subject)
        .sort(),
    ).toEqual(["Acme: confirm your email address", "Acme: you already have an account"]);
  });

  it("a taken username is 409 whether or not the address has an account", async () => {
    const name = `taken${Math.random().toString(36).slice(2, 8)}`;
    const owner = email();
    await post(app, "/auth/register", { email: owner, password: PASSWORD, username: name });
    for (const address of [owner, email()]) {
      const res = await post(app, "/auth/register", {
        email: address,
        password: PASSWORD,
        username: name.toUpperCase(),
      });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ code: "conflict", detail: "This username is taken" });
    }
  });

  it("a wrong password is still 401, so the 403 only ever follows the right one", async () => {
    const address = email();
    await post(app, "/auth/register", { email: address, password: PASSWORD });
    const res = await passwordLogin(app, address, "not the password");
    expect(res.json()).toMatchObject({ status: 401, code: "invalid_credentials" });
  });
});

describe("mail limits", () => {
  const mail = useMailServer();
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      ...smtpConfig(mail.server),
      mail: { ...smtpConfig(mail.server).mail, perIp: 3, perEmail: 2 },
    });
  });
  afterAll(() => app.close());

  it("per address and kind: beyond the limit mail is dropped while the answer stays 202", async () => {
    const address = email();
    await registerUser(app, { email: address });
    // Each from an address of its own, so only the per-address budget is in play.
    const from = (ip: string, url: string) =>
      app.http.inject({ method: "POST", url, remoteAddress: ip, ...json({ email: address }) });
    const answers = [];
    for (let i = 0; i < 3; i++) {
      answers.push((await from(`10.7.7.${i}`, "/auth/password/forgot")).statusCode);
    }
    expect(answers).toEqual([202, 202, 202]);
    await from("10.7.7.9", "/auth/magic-link");
    await app.svc.mailer.flush();
    const subjects = mail.server.to(address).map((m) => m.subject);
    expect(subjects.filter((s) => s.includes("reset"))).toHaveLength(2);
    // Another kind has a budget of its own: a reset flood does not silence it.
    expect(subjects.filter((s) => s.includes("sign-in"))).toHaveLength(1);
  });

  it("switching an account's email back and forth cannot flood the other address", async () => {
    const victim = email();
    const user = await registerUser(app);
    for (let i = 0; i < 6; i++) {
      for (const to of [victim, email()]) {
        await app.http.inject({
          method: "PATCH",
          url: "/users/me",
          remoteAddress: `10.1.2.${i}`,
          headers: { ...bearer(user.accessToken), ...json({}).headers },
          payload: JSON.stringify({ email: to }),
        });
      }
    }
    await app.svc.mailer.flush();
    const got = mail.server.to(victim).map((m) => m.subject);
    // At most perEmail (2) of each kind: verification links and change notices.
    expect(got.filter((s) => s.includes("confirm"))).toHaveLength(2);
    expect(got.filter((s) => s.includes("changed"))).toHaveLength(2);
  });

  it("per IP: the requests that send mail answer 429 with Retry-After", async () => {
    const from = (url: string) =>
      app.http.inject({
        method: "POST",
        url,
        remoteAddress: "10.9.8.7",
        ...json({ email: email() }),
      });
    const passed = [
      await from("/auth/email/resend"),
      await from("/auth/password/forgot"),
      await from("/auth/magic-link"),
    ];
    expect(passed.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    const res = await from("/auth/password/forgot");
    expect(res.statusCode).toBe(429);
    expect(res.json()).toMatchObject({ code: "rate_limited" });
    expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("security notices skip the per-IP budget: spending it first hides no password change", async () => {
    const owner = email();
    const user = await registerUser(app, { email: owner, password: PASSWORD });
    // Spend this address's (127.0.0.1's) mail budget on strangers.
    const forgot = () =>
      app.http.inject({
        method: "POST",
        url: "/auth/password/forgot",
        ...json({ email: email() }),
      });
    for (let i = 0; i < 3; i++) await forgot();
    expect((await forgot()).statusCode).toBe(429);
    const changed = await app.http.inject({
      method: "POST",
      url: "/auth/password/change",
      headers: {
        ...bearer(user.accessToken),
        "x-step-up-token": await stepUpToken(app, user.accessToken),
        "content-type": "application/json",
      },
      payload: JSON.stringify({ currentPassword: PASSWORD, newPassword: "a new horse battery" }),
    });
    expect(changed.statusCode).toBe(200);
    await app.svc.mailer.flush();
    const subjects = mail.server.to(owner).map((m) => m.subject);
    expect(subjects.filter((s) => /password/i.test(s))).toHaveLength(1);
  });
});

describe("new sign-in notice", () => {
  const mail = useMailServer();
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      ...smtpConfig(mail.server),
      mail: { ...smtpConfig(mail.server).mail, newSignInNotice: true },
    });
  });
  afterAll(() => app.close());

  const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
  const CHROME_MAC =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
  const login = (address: string, ua: string) =>
    post(app, "/auth/login", { identifier: address, password: PASSWORD }, { "user-agent": ua });

  it("mails once a browser and OS the account has not used signs in, not for known ones", async () => {
    const address = email();
    await post(
      app,
      "/auth/register",
      { email: address, password: PASSWORD },
      { "user-agent": FIREFOX },
    );
    await login(address, FIREFOX.replace("133.0", "134.0")); // an update is not a new device
    await app.svc.mailer.flush();
    expect(mail.server.to(address).map((m) => m.subject)).toEqual([
      "Acme: confirm your email address",
    ]);
    await login(address, CHROME_MAC);
    await app.svc.mailer.flush();
    const notice = mail.server.to(address).at(-1);
    expect(notice?.subject).toBe("Acme: new sign-in to your account");
    expect(notice?.body).toContain("Chrome 131 on Mac OS 10");
  });
});

/**
 * Every transaction that uses or voids a user's links takes the user's row first and the
 * link rows after it; the other order deadlocks on PostgreSQL (a 500) when two such
 * transactions for one user meet. SQLite runs one write transaction at a time.
 */
describe(`links used at the same moment as a change that voids them (${TEST_DB})`, () => {
  const ROUNDS = 30;
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ rateLimit: { publicPerIp: 10_000 } });
  });
  afterAll(() => app.close());

  /** A fresh link's token, minted as the mail would carry it. */
  const tokenOf = async (user: { id: string; email: string }, purpose: OneTimePurpose) => {
    const { link } = await createLink(app.svc, user, purpose);
    return new URL(link).searchParams.get("token") as string;
  };

  /**
   * A verify that lost the race is the used-link answer, or (it used the link first, but
   * the reset ended every session before its own existed) 401 session_revoked; never a
   * server error.
   */
  const expectWonOrVoided = (res: { statusCode: number; json(): unknown }, round: number) => {
    expect([200, 400, 401], `round ${round}: ${JSON.stringify(res.json())}`).toContain(
      res.statusCode,
    );
    if (res.statusCode === 200) expect(res.json()).toHaveProperty("accessToken");
    else if (res.statusCode === 401) expect(res.json()).toMatchObject({ code: "session_revoked" });
    else expect(res.json()).toMatchObject({ code: "invalid_or_expired_token" });
  };

  it("a magic-link sign-in racing a password reset: one order or the other, no deadlock", async () => {
    const address = email();
    const { user } = await registerUser(app, { email: address });
    const owner = { id: user.id, email: address };
    for (let round = 0; round < ROUNDS; round++) {
      const magic = await tokenOf(owner, "magic_link");
      const reset = await tokenOf(owner, "reset_password");
      const newPassword = `a brand new passphrase ${round}`;
      // The reset hashes its password before its transaction: the sign-in starts a little
      // later each round, sweeping the moment the two transactions overlap.
      const [verified, wasReset] = await Promise.all([
        delay(round % 10).then(() => post(app, "/auth/magic-link/verify", { token: magic })),
        post(app, "/auth/password/reset", { token: reset, newPassword }),
      ]);
      expect(wasReset.statusCode, `round ${round}: ${wasReset.body}`).toBe(204);
      expectWonOrVoided(verified, round);
      if (verified.statusCode === 200) {
        // Whichever finished first, the reset ended the sign-in's session.
        const { refreshToken } = verified.json<{ refreshToken: string }>();
        const refreshed = await post(app, "/auth/refresh", { refreshToken });
        expect(refreshed.statusCode, `round ${round}`).toBe(401);
      }
      // Either way the magic link is spent: used by the sign-in, or voided by the reset.
      const again = await post(app, "/auth/magic-link/verify", { token: magic });
      expect(again.json()).toMatchObject({ code: "invalid_or_expired_token" });
      const login = await post(app, "/auth/login", { identifier: address, password: newPassword });
      expect(login.statusCode, `round ${round}`).toBe(200);
    }
  });

  it("a password change racing a password reset: exactly one wins, no deadlock", async () => {
    const address = email();
    let password = "the first passphrase";
    await registerUser(app, { email: address, password });
    for (let round = 0; round < ROUNDS; round++) {
      const signedIn = await post(app, "/auth/login", { identifier: address, password });
      const { accessToken } = signedIn.json<{ accessToken: string }>();
      const stepUp = await app.http.inject({
        method: "POST",
        url: "/auth/step-up",
        headers: { ...bearer(accessToken), ...json({}).headers },
        payload: JSON.stringify({ password }),
      });
      const { stepUpToken } = stepUp.json<{ stepUpToken: string }>();
      const reset = await tokenOf(
        { id: signedIn.json<{ user: { id: string } }>().user.id, email: address },
        "reset_password",
      );
      const resetTo = `the reset passphrase ${round}`;
      const changeTo = `the changed passphrase ${round}`;
      const [changed, wasReset] = await Promise.all([
        delay(round % 10).then(() =>
          app.http.inject({
            method: "POST",
            url: "/auth/password/change",
            headers: {
              ...bearer(accessToken),
              "x-step-up-token": stepUpToken,
              ...json({}).headers,
            },
            payload: JSON.stringify({ currentPassword: password, newPassword: changeTo }),
          }),
        ),
        post(app, "/auth/password/reset", { token: reset, newPassword: resetTo }),
      ]);
      // The change first voids the reset link (400); the reset first ends the session and
      // replaces the hash the change checked (401).
      const outcome = `round ${round}: ${changed.statusCode} ${wasReset.statusCode}`;
      if (changed.statusCode === 200) {
        expect(wasReset.json(), outcome).toMatchObject({ code: "invalid_or_expired_token" });
        password = changeTo;
      } else {
        expect([changed.statusCode, wasReset.statusCode], outcome).toEqual([401, 204]);
        password = resetTo;
      }
      const login = await post(app, "/auth/login", { identifier: address, password });
      expect(login.statusCode, `round ${round}`).toBe(200);
    }
  });

  it("a login's background rehash never brings back a password a reset replaced", async () => {
    const address = email();
    const old = "the old leaked passphrase";
    const { user } = await registerUser(app, { email: address, password: old });
    // Stored under other Argon2 parameters (as after a settings change): a login rehashes.
    const stale = await argon2(old, { algorithm: 2, memoryCost: 4096, timeCost: 3 });
    await app.svc.store.users.setPasswordHash(user.id, stale, app.clock.now());
    expect(app.svc.hasher.needsRehash(stale)).toBe(true);
    // The real rehash, held until the reset is done.
    const hash = app.svc.hasher.hash.bind(app.svc.hasher);
    let release!: () => void;
    const resetDone = new Promise<void>((resolve) => {
      release = resolve;
    });
    let rehashed!: Promise<string>;
    let writeSpy: { mockRestore(): void } | undefined;
    const spy = vi.spyOn(app.svc.hasher, "hash").mockImplementation((password) => {
      if (password !== old) return hash(password);
      rehashed = hash(password).then(async (fresh) => {
        await resetDone;
        return fresh;
      });
      return rehashed;
    });
    try {
      expect(
        (await post(app, "/auth/login", { identifier: address, password: old })).statusCode,
      ).toBe(200);
      const token = await tokenOf({ id: user.id, email: address }, "reset_password");
      const reset = await post(app, "/auth/password/reset", {
        token,
        newPassword: "the owner's new one",
      });
      expect(reset.statusCode).toBe(204);
      const replace = app.svc.store.users.replacePasswordHash.bind(app.svc.store.users);
      let wrote!: Promise<boolean>;
      writeSpy = vi
        .spyOn(app.svc.store.users, "replacePasswordHash")
        .mockImplementation((...args) => {
          wrote = replace(...args);
          return wrote;
        });
      release();
      await rehashed;
      await vi.waitUntil(() => wrote !== undefined);
      expect(await wrote).toBe(false); // the reset's hash is no longer the one it verified
    } finally {
      spy.mockRestore();
      writeSpy?.mockRestore();
    }
    expect(
      (await post(app, "/auth/login", { identifier: address, password: old })).statusCode,
    ).toBe(401);
    const owner = await post(app, "/auth/login", {
      identifier: address,
      password: "the owner's new one",
    });
    expect(owner.statusCode).toBe(200);
  });

  it("a magic-link sign-in racing an email change: one order or the other, no deadlock", async () => {
    const address = email();
    const first = await registerUser(app, { email: address });
    const owner = { id: first.user.id, email: address };
    for (let round = 0; round < ROUNDS; round++) {
      // Proven, as after a first verification: a link that claims an unproven address
      // ends every session (claimUnprovenAccount), which is not the race under test.
      await app.svc.store.users.markEmailVerified(owner.id, owner.email, app.clock.now());
      const magic = await tokenOf(owner, "magic_link");
      const next = email();
      const [verified, changed] = await Promise.all([
        post(app, "/auth/magic-link/verify", { token: magic }),
        app.http.inject({
          method: "PATCH",
          url: "/users/me",
          headers: { ...bearer(first.accessToken), ...json({}).headers },
          payload: JSON.stringify({ email: next }),
        }),
      ]);
      expect(changed.statusCode, `round ${round}: ${changed.body}`).toBe(200);
      expectWonOrVoided(verified, round);
      owner.email = next;
    }
  });
});

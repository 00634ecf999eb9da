import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MailMessage } from "../src/mail/transport.js";
import { json, registerUser, startTestApp } from "./helpers.js";

interface ApiCall {
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/** A local mail API that records each call and answers with `status()`. */
async function startMailApi(status: () => number) {
  const calls: ApiCall[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    calls.push({
      authorization: req.headers.authorization,
      contentType: req.headers["content-type"],
      body: JSON.parse(raw),
    });
    res.writeHead(status(), { "content-type": "application/json" }).end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v3.1/send`,
    calls,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("HTTP mail API transport", () => {
  let answer = 200;
  let api: Awaited<ReturnType<typeof startMailApi>>;
  beforeAll(async () => {
    api = await startMailApi(() => answer);
  });
  afterAll(() => api.close());

  it("POSTs Mailjet-style JSON with basic auth", async () => {
    const app = await startTestApp({
      mail: {
        transport: "http",
        from: "Acme Security <security@acme.test>",
        http: { url: api.url, apiKey: "key-1", apiSecret: "secret-1" },
      },
    });
    try {
      await registerUser(app, { email: "api@example.com" });
      await app.svc.mailer.flush();
      expect(api.calls).toHaveLength(1);
      const [call] = api.calls;
      expect(call?.authorization).toBe(`Basic ${Buffer.from("key-1:secret-1").toString("base64")}`);
      expect(call?.contentType).toBe("application/json");
      expect(call?.body).toMatchObject({
        Messages: [
          {
            From: { Email: "security@acme.test", Name: "Acme Security" },
            To: [{ Email: "api@example.com" }],
            Subject: "Latchkey: confirm your email address",
            TextPart: expect.stringContaining("/ui/verify-email?token="),
            HTMLPart: expect.stringContaining("<a href="),
          },
        ],
      });
    } finally {
      await app.close();
    }
  });

  it("retries when the API answers an error, then counts the failure", async () => {
    answer = 503;
    const app = await startTestApp({
      mail: {
        transport: "http",
        http: { url: api.url, apiKey: "k", apiSecret: "s" },
        maxAttempts: 3,
        retryDelayMs: 1,
      },
    });
    try {
      api.calls.length = 0;
      await registerUser(app);
      await app.svc.mailer.flush();
      expect(api.calls).toHaveLength(3);
      expect(app.svc.mailer.stats()).toMatchObject({
        failed: 1,
        retried: 2,
        lastError: "HTTP 503",
      });
    } finally {
      answer = 200;
      await app.close();
    }
  });

  it("does not retry a refusal (4xx other than 408 and 429)", async () => {
    answer = 400;
    const app = await startTestApp({
      mail: {
        transport: "http",
        http: { url: api.url, apiKey: "k", apiSecret: "s" },
        retryDelayMs: 1,
      },
    });
    try {
      api.calls.length = 0;
      await registerUser(app);
      await app.svc.mailer.flush();
      expect(api.calls).toHaveLength(1);
      expect(app.svc.mailer.stats()).toMatchObject({
        failed: 1,
        retried: 0,
        lastError: "HTTP 400",
      });
    } finally {
      answer = 200;
      await app.close();
    }
  });

  it("needs its credentials configured", async () => {
    await expect(startTestApp({ mail: { transport: "http" } })).rejects.toThrow(
      "mail.http: the http transport needs apiKey and apiSecret",
    );
  });
});

describe("dev outbox (the default)", () => {
  it("writes each message as an .eml file under <dataDir>/outbox", async () => {
    const app = await startTestApp();
    try {
      await registerUser(app, { email: "outbox@example.com" });
      await app.svc.mailer.flush();
      const dir = join(app.svc.config.dataDir, "outbox");
      const files = readdirSync(dir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/\.eml$/);
      const eml = readFileSync(join(dir, files[0] as string), "utf8");
      expect(eml).toMatch(/^To: outbox@example\.com$/m);
      expect(eml).toMatch(/^Subject: Latchkey: confirm your email address$/m);
      expect(eml.replace(/=\r?\n/g, "")).toContain("/ui/verify-email?token=3D");
    } finally {
      await app.close();
    }
  });
});

describe("a transport of your own", () => {
  it("is passed to createApp and receives every message", async () => {
    const sent: MailMessage[] = [];
    const app = await startTestApp(
      {},
      {
        mailTransport: { name: "mine", send: async (m) => void sent.push(m) },
      },
    );
    try {
      await registerUser(app, { email: "mine@example.com" });
      await app.http.inject({
        method: "POST",
        url: "/auth/password/forgot",
        ...json({ email: "mine@example.com" }),
      });
      await app.svc.mailer.flush();
      // Two messages in flight at once: either may be handed over first.
      expect(sent.map((m) => [m.to, m.subject]).sort()).toEqual([
        ["mine@example.com", "Latchkey: confirm your email address"],
        ["mine@example.com", "Latchkey: reset your password"],
      ]);
      expect(app.svc.mailer.stats().transport).toBe("mine");
    } finally {
      await app.close();
    }
  });
});

describe("single use under concurrency", () => {
  it("of two simultaneous resets with one link, exactly one succeeds", async () => {
    const sent: MailMessage[] = [];
    const app = await startTestApp(
      {},
      {
        mailTransport: { name: "mine", send: async (m) => void sent.push(m) },
      },
    );
    try {
      await app.listen();
      await registerUser(app, { email: "race@example.com" });
      await app.http.inject({
        method: "POST",
        url: "/auth/password/forgot",
        ...json({ email: "race@example.com" }),
      });
      await app.svc.mailer.flush();
      const mailed = sent.map((m) => /reset-password\?token=([\w-]+)/.exec(m.text)?.[1]);
      const token = mailed.find(Boolean);
      expect(token).toBeDefined();
      const reset = (newPassword: string) =>
        fetch(`${app.url}/auth/password/reset`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ token, newPassword }),
        });
      const answers = await Promise.all([
        reset("first new password"),
        reset("second new password"),
      ]);
      expect(answers.map((r) => r.status).sort()).toEqual([204, 400]);
    } finally {
      await app.close();
    }
  });
});

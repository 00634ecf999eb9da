import type { User } from "../../../client/src/index.js";
import { client, currentUser, go } from "../api.js";
import {
  describe,
  field,
  fieldValue,
  form,
  h,
  LOCKED_EVENT,
  messages,
  render,
  when,
} from "../dom.js";
import { passkeysPanel } from "./passkeys.js";
import { reauthProof, withStepUp } from "./step-up.js";

const SCOPES = [
  ["profile:read", "Read the profile"],
  ["sessions:read", "List sessions"],
  ["sessions:write", "Sign sessions out"],
] as const;

export async function accountPage(): Promise<void> {
  let user: User | "locked" | "signed_out";
  try {
    user = await currentUser();
  } catch (err) {
    render(h("h1", {}, "Your account"), h("p", { role: "alert", class: "alert" }, describe(err)));
    return;
  }
  if (user === "signed_out") return go("/ui/login");
  if (user === "locked") return unlockView();
  // Idle past screenLockMinutes with the page open, the next action is refused (423).
  document.addEventListener(LOCKED_EVENT, unlockView, { once: true });
  const sessions = section("Where you are signed in");
  render(
    h("h1", {}, "Your account"),
    signedInAs(user),
    profileSection(user),
    user.guest ? null : passwordSection(),
    user.guest ? null : policySection(user),
    user.guest ? null : mfaSection(user),
    user.guest ? null : section("Passkeys", passkeysPanel()),
    sessions,
    user.guest ? null : tokensSection(),
  );
  await fillSessions(sessions);
}

function section(title: string, ...children: Array<Node | null>): HTMLElement {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

function signedInAs(user: User): HTMLElement {
  const msg = messages();
  const button = (label: string, cls: string, run: () => Promise<void>) =>
    h(
      "button",
      {
        type: "button",
        class: cls,
        onclick: () => run().then(() => go("/ui/login"), msg.error),
      },
      label,
    );
  return h(
    "div",
    {},
    h(
      "p",
      {},
      "Signed in as ",
      h("strong", {}, user.username ?? user.email ?? user.id),
      user.guest ? " (guest)" : "",
    ),
    h(
      "div",
      { class: "row" },
      button("Sign out", "secondary", () => client.logout()),
      button("Sign out everywhere", "danger", () => client.logoutAll()),
    ),
    msg.el,
  );
}

function profileSection(user: User): HTMLElement {
  const verified = user.email
    ? h("span", { class: "badge" }, user.emailVerified ? "verified" : "not verified")
    : null;
  return section(
    "Profile",
    form(
      {
        label: "Profile",
        submit: "Save profile",
        onsubmit: async (el) => {
          const username = fieldValue(el, "Username").trim();
          const email = fieldValue(el, "Email").trim();
          const patch = {
            ...(username && username !== user.username ? { username } : {}),
            ...(email && email !== user.email ? { email } : {}),
          };
          if (Object.keys(patch).length === 0) return;
          Object.assign(user, await client.updateProfile(patch));
          el.querySelector<HTMLElement>("[role=status]")?.replaceChildren("Profile saved.");
        },
      },
      field("Username", {
        value: user.username ?? "",
        minlength: 2,
        maxlength: 50,
        autocomplete: "nickname",
      }),
      field("Email", { type: "email", value: user.email ?? "", autocomplete: "email" }),
    ),
    verified ? h("p", { class: "hint" }, "Email address: ", verified) : null,
  );
}

/** ASVS 2.1.5-2.1.6: a signed-in user changes the password by giving the current one. */
function passwordSection(): HTMLElement {
  return section(
    "Password",
    form(
      {
        label: "Change your password",
        submit: "Change password",
        onsubmit: async (el) => {
          const current = fieldValue(el, "Current password");
          const next = fieldValue(el, "New password");
          if (next !== fieldValue(el, "Repeat the new password")) {
            throw new Error("The two new passwords differ.");
          }
          // The route also wants a step-up, which the current password just given proves.
          await client.stepUp({ password: current });
          await client.changePassword(current, next);
          el.reset();
          el.querySelector<HTMLElement>("[role=status]")?.replaceChildren(
            "Password changed. Your other sessions were signed out.",
          );
        },
      },
      field("Current password", {
        type: "password",
        autocomplete: "current-password",
        required: true,
      }),
      field(
        "New password",
        { type: "password", autocomplete: "new-password", required: true, minlength: 8 },
        "At least 8 characters; a passphrase of a few words is best.",
      ),
      field("Repeat the new password", {
        type: "password",
        autocomplete: "new-password",
        required: true,
        minlength: 8,
      }),
    ),
  );
}

function policySection(user: User): HTMLElement {
  const ips = h("textarea", {
    id: "allowed-ips",
    name: "allowedIps",
    rows: 3,
    "aria-describedby": "allowed-ips-hint",
  });
  ips.value = user.allowedIps.join("\n");
  return section(
    "Sign-in rules",
    form(
      {
        label: "Sign-in rules",
        submit: "Save rules",
        onsubmit: async (el) => {
          const lock = fieldValue(el, "Lock after idle minutes (empty: never)").trim();
          const updated = await client.updateProfile({
            allowedIps: ips.value.split(/[\s,]+/).filter(Boolean),
            singleSession:
              el.querySelector<HTMLInputElement>("input[name=singleSession]")?.checked ?? false,
            screenLockMinutes: lock ? Number(lock) : null,
          });
          Object.assign(user, updated);
          el.querySelector<HTMLElement>("[role=status]")?.replaceChildren("Rules saved.");
        },
      },
      h(
        "div",
        { class: "field" },
        h("label", { for: "allowed-ips" }, "Allowed IP addresses"),
        ips,
        h(
          "span",
          { class: "hint", id: "allowed-ips-hint" },
          "One address or CIDR range per line (IPv4 or IPv6). Empty allows every address. The list must include the address you use now.",
        ),
      ),
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "singleSession", checked: user.singleSession }),
        "One session at a time (a new sign-in ends the others)",
      ),
      field("Lock after idle minutes (empty: never)", {
        type: "number",
        min: 1,
        max: 1440,
        value: user.screenLockMinutes ?? "",
      }),
    ),
  );
}

function mfaSection(user: User): HTMLElement {
  const body = h("div", {});
  const el = section("Two-factor authentication", body);
  const msg = messages();
  const showCodes = (codes: string[], intro: string) =>
    body.replaceChildren(
      h("p", { role: "status" }, intro),
      h(
        "p",
        {},
        "Save these backup codes somewhere safe. Each works once if you lose your authenticator; they are not shown again.",
      ),
      h(
        "ol",
        { class: "codes", "aria-label": "Backup codes" },
        ...codes.map((c) => h("li", {}, c)),
      ),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () => body.replaceChildren(...enabledView()),
        },
        "I saved them",
      ),
    );
  const enabledView = () => [
    h("p", {}, "Two-factor authentication is ", h("strong", {}, "on"), "."),
    h(
      "div",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () =>
            withStepUp(body, async () =>
              showCodes(
                await client.regenerateBackupCodes(),
                "New backup codes: the old ones no longer work.",
              ),
            ).catch(msg.error),
        },
        "Get new backup codes",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: () =>
            withStepUp(body, async () => {
              await client.totpDisable();
              user.mfaEnabled = false;
              body.replaceChildren(...disabledView());
            }).catch(msg.error),
        },
        "Turn off two-factor",
      ),
    ),
    msg.el,
  ];
  const disabledView = () => [
    h(
      "p",
      {},
      "Two-factor authentication is ",
      h("strong", {}, "off"),
      ". Turn it on to ask for a code from an authenticator app at sign-in.",
    ),
    h(
      "button",
      { type: "button", onclick: () => startSetup().catch(msg.error) },
      "Set up two-factor authentication",
    ),
    msg.el,
  ];
  const startSetup = async () => {
    const setup = await client.totpSetup();
    body.replaceChildren(
      h(
        "p",
        {},
        "Scan this code with your authenticator app, then enter the 6-digit code it shows.",
      ),
      h("img", {
        class: "qr",
        src: setup.qrCodeDataUrl,
        alt: "QR code for your authenticator app",
        width: 200,
        height: 200,
      }),
      h(
        "p",
        {},
        "Or enter this key by hand: ",
        h("code", { class: "secret", "data-testid": "totp-secret" }, setup.secret),
      ),
      form(
        {
          label: "Confirm two-factor setup",
          submit: "Turn on two-factor",
          onsubmit: async (f) => {
            const codes = await client.totpEnable(fieldValue(f, "Code from the app").trim());
            user.mfaEnabled = true;
            showCodes(codes, "Two-factor authentication is on.");
          },
        },
        field("Code from the app", {
          inputmode: "numeric",
          autocomplete: "one-time-code",
          required: true,
          pattern: "\\s*\\d{3}\\s?\\d{3}\\s*",
        }),
      ),
    );
    body.querySelector("input")?.focus();
  };
  body.replaceChildren(...(user.mfaEnabled ? enabledView() : disabledView()));
  return el;
}

async function fillSessions(host: HTMLElement): Promise<void> {
  const msg = messages();
  const table = h("table", {});
  const reload = async () => {
    const sessions = await client.sessions();
    table.replaceChildren(
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Device"),
          h("th", { scope: "col" }, "IP address"),
          h("th", { scope: "col" }, "Last active"),
          h("th", { scope: "col" }, h("span", { class: "hint" }, "Action")),
        ),
      ),
      h(
        "tbody",
        {},
        ...sessions.map((s) => {
          const device = `${s.browser ?? "Unknown browser"} on ${s.os ?? "unknown system"}`;
          return h(
            "tr",
            { "data-session": s.id },
            h(
              "td",
              {},
              device,
              h("br", {}),
              h("span", { class: "hint" }, `since ${when(s.createdAt)}`),
            ),
            h("td", {}, s.ip ?? "unknown"),
            h("td", {}, when(s.lastSeenAt)),
            h(
              "td",
              {},
              s.current
                ? h("span", { class: "badge" }, "This device")
                : h(
                    "button",
                    {
                      type: "button",
                      class: "danger",
                      "aria-label": `Sign out ${device} (${s.ip ?? "unknown address"})`,
                      onclick: async () => {
                        try {
                          await client.revokeSession(s.id);
                          await reload();
                          msg.ok(`Signed out ${device}.`);
                        } catch (err) {
                          msg.error(err);
                        }
                      },
                    },
                    "Sign out",
                  ),
            ),
          );
        }),
      ),
    );
  };
  host.append(table, msg.el);
  await reload().catch(msg.error);
}

function tokensSection(): HTMLElement {
  const list = h("ul", {});
  const msg = messages();
  const reveal = h("div", {});
  const reload = async () => {
    const tokens = await client.apiTokens();
    list.replaceChildren(
      ...(tokens.length === 0 ? [h("li", { class: "hint" }, "No API tokens.")] : []),
      ...tokens.map((t) =>
        h(
          "li",
          {},
          h("strong", {}, t.name),
          ` ${t.prefix}… · ${t.scopes.join(", ")} · created ${when(t.createdAt)} · expires ${when(t.expiresAt)} `,
          h(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-label": `Delete API token ${t.name}`,
              onclick: async () => {
                try {
                  await client.deleteApiToken(t.id);
                  await reload();
                } catch (err) {
                  msg.error(err);
                }
              },
            },
            "Delete",
          ),
        ),
      ),
    );
  };
  const create = form(
    {
      label: "New API token",
      submit: "Create token",
      onsubmit: async (el) => {
        const scopes = [...el.querySelectorAll<HTMLInputElement>("input[name=scope]:checked")].map(
          (i) => i.value,
        ) as Array<(typeof SCOPES)[number][0]>;
        if (scopes.length === 0) throw new Error("Choose at least one permission.");
        const days = fieldValue(el, "Expires after days (empty: never)").trim();
        const created = await client.createApiToken({
          name: fieldValue(el, "Token name").trim(),
          scopes,
          ...(days ? { expiresInDays: Number(days) } : {}),
        });
        reveal.replaceChildren(
          h("p", { role: "status" }, "Copy this token now; it is not shown again:"),
          h(
            "p",
            {},
            h("code", { class: "secret", "data-testid": "api-token-secret" }, created.token),
          ),
        );
        el.reset();
        await reload();
      },
    },
    field("Token name", { required: true, maxlength: 100 }),
    h(
      "fieldset",
      {},
      h("legend", {}, "Permissions"),
      ...SCOPES.map(([scope, label]) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", name: "scope", value: scope }),
          label,
        ),
      ),
    ),
    field("Expires after days (empty: never)", { type: "number", min: 1, max: 3650 }),
  );
  void reload().catch(msg.error);
  return section("API tokens", list, msg.el, reveal, create);
}

/**
 * The lock screen. The server unlocks with the password or a TOTP code (an account
 * without a password has only the code); who cannot, or is not its owner, signs out.
 */
function unlockView(): void {
  const msg = messages();
  render(
    h("h1", {}, "Session locked"),
    h("p", {}, "This session was locked after a period of inactivity."),
    form(
      {
        label: "Unlock",
        submit: "Unlock",
        onsubmit: async (el) => {
          await client.unlock(reauthProof(fieldValue(el, "Password or authenticator code")));
          await accountPage();
        },
      },
      field("Password or authenticator code", {
        type: "password",
        autocomplete: "current-password",
        required: true,
        autofocus: true,
      }),
    ),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => client.logout().then(() => go("/ui/login"), msg.error),
      },
      "Sign out",
    ),
    msg.el,
  );
}

/** What every message may mention about where it came from. */
export interface Brand {
  productName: string;
}

/** A rendered message body, before the sender and recipient are known. */
export interface Rendered {
  subject: string;
  text: string;
  html: string;
  link?: string;
}

/** Context of a security notice, so the reader can tell whether it was them. */
export interface NoticeContext {
  at: Date;
  ip: string | null;
  device: string | null;
}

const escapeHtml = (value: string) =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );

/** Paragraphs of plain text, and the same as HTML with an optional button. */
function render(
  brand: Brand,
  subject: string,
  paragraphs: string[],
  action?: { label: string; link: string },
): Rendered {
  const text = [...paragraphs, ...(action ? [`${action.label}: ${action.link}`] : [])].join("\n\n");
  const body = paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join("\n");
  const button = action
    ? `<p><a href="${escapeHtml(action.link)}">${escapeHtml(action.label)}</a></p>\n` +
      `<p style="color:#666;font-size:12px">${escapeHtml(action.link)}</p>`
    : "";
  const html =
    `<!doctype html><html><body style="font-family:sans-serif;max-width:36em">\n` +
    `<h1 style="font-size:18px">${escapeHtml(brand.productName)}</h1>\n${body}\n${button}\n` +
    `</body></html>`;
  return { subject: `${brand.productName}: ${subject}`, text, html, link: action?.link };
}

const minutes = (seconds: number) => Math.round(seconds / 60);

const describe = (c: NoticeContext) =>
  `When: ${c.at.toISOString()}. From: ${c.ip ?? "unknown address"}` +
  `${c.device ? ` (${c.device})` : ""}.`;

const NOT_YOU = "If this was not you, reset your password at once and review your sessions.";

export const templates = {
  verifyEmail: (brand: Brand, link: string, ttlSeconds: number) =>
    render(
      brand,
      "confirm your email address",
      [
        "Confirm that this address belongs to your account.",
        `The link works once and expires in ${minutes(ttlSeconds)} minutes. If you did not sign up, ignore this message.`,
      ],
      { label: "Confirm email", link },
    ),

  resetPassword: (brand: Brand, link: string, ttlSeconds: number) =>
    render(
      brand,
      "reset your password",
      [
        "Someone asked to reset the password of your account.",
        `The link works once and expires in ${minutes(ttlSeconds)} minutes. If it was not you, ignore this message: your password stays as it is.`,
      ],
      { label: "Choose a new password", link },
    ),

  magicLink: (brand: Brand, link: string, ttlSeconds: number) =>
    render(
      brand,
      "your sign-in link",
      [
        "Use this link to sign in.",
        `It works once and expires in ${minutes(ttlSeconds)} minutes. If you did not ask for it, ignore this message.`,
      ],
      { label: "Sign in", link },
    ),

  /** Someone tried to register with an address that already has an account. */
  accountExists: (brand: Brand, link: string) =>
    render(
      brand,
      "you already have an account",
      [
        "Someone tried to create an account with this address, which already has one.",
        "If it was you, sign in instead, or reset your password if you forgot it. If not, you can ignore this message.",
      ],
      { label: "Sign in", link },
    ),

  passwordChanged: (brand: Brand, context: NoticeContext) =>
    render(brand, "your password was changed", [
      "The password of your account was changed and your other sessions were signed out.",
      describe(context),
      NOT_YOU,
    ]),

  /** Sent to the old address, so a hijacked account's owner still hears of it. */
  emailChanged: (brand: Brand, newEmail: string, context: NoticeContext) =>
    render(brand, "your email address was changed", [
      `The email address of your account was changed to ${maskEmail(newEmail)}.`,
      describe(context),
      NOT_YOU,
    ]),

  /** A change to how the account signs in: `change` is one sentence, e.g. "Two-factor authentication was turned off." */
  securityChange: (brand: Brand, change: string, context: NoticeContext) =>
    render(brand, "a security setting of your account changed", [
      change,
      describe(context),
      NOT_YOU,
    ]),

  newSignIn: (brand: Brand, context: NoticeContext) =>
    render(brand, "new sign-in to your account", [
      "Your account was signed in to from a browser or device it had not used before.",
      describe(context),
      NOT_YOU,
    ]),

  /** The first factor was right and a wrong second one stopped the sign-in: that first one is known. */
  secondStepFailed: (brand: Brand, first: FirstFactorKind, context: NoticeContext) =>
    render(brand, "a sign-in got past its first step", [
      `${FIRST_FACTOR[first].proven}, but the second step (two-factor authentication) failed and no one was signed in.`,
      describe(context),
      `If this was not you, ${FIRST_FACTOR[first].advice}, and review your sessions.`,
    ]),
};

/** How a sign-in began, for a notice about one that stopped at the second step. */
export type FirstFactorKind = "password" | "link" | "provider" | "passkey";

/** What was proven, and what its owner should secure if it was not them. */
const FIRST_FACTOR: Record<FirstFactorKind, { proven: string; advice: string }> = {
  password: {
    proven: "Your password was entered correctly",
    advice: "someone knows your password: change it at once",
  },
  link: {
    proven: "A sign-in link mailed to this address was used",
    advice: "someone can read this mailbox: secure your email account",
  },
  provider: {
    proven:
      "A sign-in through a provider linked to your account (such as Google or GitHub) succeeded",
    advice: "someone controls that provider account: secure it or unlink it",
  },
  passkey: {
    proven: "One of your passkeys was used",
    advice: "someone holds one of your passkeys: remove it",
  },
};

/** `a***@example.com`: enough to recognise, not enough to harvest. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at < 1) return "***";
  return `${email[0]}***${email.slice(at)}`;
}

import { LatchkeyError } from "../../client/src/index.js";

type Child = Node | string | null | undefined | false;
type Props = Record<string, string | number | boolean | EventListener | undefined>;

/**
 * `h("button", { type: "submit", onclick }, "Save")`. Text goes in as text nodes, never
 * as HTML, so nothing a server or URL says can become markup. No `style`: the CSP
 * forbids inline styles.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(key.replace(/^on/, ""), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(
    ...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false),
  );
  return el;
}

let ids = 0;
/**
 * A labelled input with an optional hint, tied by `for`/`id` and `aria-describedby`, so
 * the input's accessible name is exactly the label (screen readers, getByLabel).
 */
export function field(label: string, input: Props, hint?: string): HTMLDivElement {
  const id = `f${++ids}`;
  const hintId = hint ? `${id}-hint` : undefined;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, ...input, "aria-describedby": hintId }),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
  );
}

export const fieldValue = (root: ParentNode, label: string): string => inputOf(root, label).value;

export function inputOf(root: ParentNode, label: string): HTMLInputElement | HTMLTextAreaElement {
  for (const el of root.querySelectorAll("label")) {
    if (el.textContent === label && el.htmlFor) {
      const control = root.querySelector(`#${el.htmlFor}`);
      if (control) return control as HTMLInputElement;
    }
  }
  throw new Error(`no field labelled ${label}`);
}

/** Replaces the page content and moves focus to its heading, as a page load would. */
export function render(...children: Child[]): void {
  const main = document.getElementById("main") as HTMLElement;
  main.replaceChildren(...children.filter((c): c is Node | string => !!c));
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · Latchkey`;
  main.focus();
}

export interface Messages {
  el: HTMLElement;
  error(err: unknown): void;
  ok(text: string): void;
  clear(): void;
}

/**
 * Dispatched on `document` when an action met a screen-locked session (423), which may
 * lock while a page is open: the account page then shows its lock screen.
 */
export const LOCKED_EVENT = "latchkey:locked";

/** A live region for outcomes; alerts are announced at once, statuses politely. */
export function messages(): Messages {
  const alert = h("p", { class: "alert", role: "alert" });
  const status = h("p", { class: "status", role: "status" });
  const el = h("div", {}, alert, status);
  return {
    el,
    error(err) {
      status.textContent = "";
      alert.textContent = describe(err);
      if (err instanceof LatchkeyError && err.code === "screen_locked") {
        document.dispatchEvent(new Event(LOCKED_EVENT));
      }
    },
    ok(text) {
      alert.textContent = "";
      status.textContent = text;
    },
    clear() {
      alert.textContent = "";
      status.textContent = "";
    },
  };
}

/**
 * A form whose submit runs `action` with the button disabled; failures land in the
 * form's alert. Returns the form and its message area.
 */
export function form(
  props: { label: string; submit: string; onsubmit: (form: HTMLFormElement) => Promise<void> },
  ...fields: Child[]
): HTMLFormElement {
  const msg = messages();
  const button = h("button", { type: "submit" }, props.submit);
  const el = h("form", { "aria-label": props.label, novalidate: false }, ...fields, button, msg.el);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    msg.clear();
    button.disabled = true;
    try {
      await props.onsubmit(el);
    } catch (err) {
      msg.error(err);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

/**
 * A button (not in a form) that runs `action` with itself disabled, so a second click
 * cannot start a second ceremony; failures land in `msg`.
 */
export function actionButton(
  label: string,
  props: Props,
  msg: Messages,
  action: () => Promise<void>,
): HTMLButtonElement {
  const button = h("button", { type: "button", ...props }, label);
  button.addEventListener("click", async () => {
    msg.clear();
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      msg.error(err);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

const FRIENDLY: Record<string, string> = {
  invalid_credentials: "That sign-in name and password do not match.",
  invalid_code: "That code is not right, or it was already used. Try the next one.",
  invalid_or_expired_token: "This link is invalid or has expired. Ask for a new one.",
  token_expired: "Your sign-in step took too long. Start again.",
  unauthenticated: "Please sign in again.",
  session_revoked: "This session has ended. Please sign in again.",
  email_not_verified: "Verify your email address first: check your inbox.",
  account_disabled: "This account is disabled.",
  ip_not_allowed: "Sign-ins from this network are not allowed for this account.",
  step_up_required: "Confirm your password to continue.",
  csrf_rejected: "This page's address is not allowed to talk to the server (allowedOrigins).",
  screen_locked: "This session is locked. Unlock it to continue.",
  webauthn_failed: "That passkey was not accepted. Try again, or use another way in.",
  // What a provider sign-in's redirect may carry as ?error= (GET /auth/oauth/:provider/callback).
  oauth_denied: "The sign-in was cancelled at the provider.",
  oauth_state_mismatch: "That sign-in expired or was started in another browser. Try again.",
  oauth_failed: "The provider's answer could not be used. Try again, or use another way in.",
  email_in_use:
    "An account already uses this email address. Sign in to it another way, then connect the provider from your account.",
  identity_in_use: "That provider account is already connected to another account.",
};

/** The sentence for a contract error code, else `fallback`: never the code's own text. */
export const explainCode = (code: string, fallback: string): string =>
  Object.hasOwn(FRIENDLY, code) ? (FRIENDLY[code] as string) : fallback;

/** What the browser's WebAuthn errors (DOMException names) mean to the user. */
const PASSKEY_ERRORS: Record<string, string> = {
  NotAllowedError: "The passkey request was cancelled or timed out. Try again when you are ready.",
  InvalidStateError: "This device already holds a passkey for this account.",
  // The page's host is not the RP ID (or a subdomain of it); an IP address never is one.
  SecurityError:
    "Passkeys cannot be used at this address. Open these pages by the server's domain name, not an IP address.",
};

export function describe(err: unknown): string {
  if (err instanceof LatchkeyError) {
    if (err.code === "rate_limited") return "Too many attempts. Wait a little and try again.";
    if (err.code === "validation_failed" && err.problem.errors?.length) {
      return err.problem.errors
        .map((e) => `${e.path.replace(/^\//, "") || "input"}: ${e.message}`)
        .join("; ");
    }
    return FRIENDLY[err.code] ?? err.message;
  }
  const ceremony = err instanceof Error ? PASSKEY_ERRORS[err.name] : undefined;
  if (ceremony) return ceremony;
  if (err instanceof TypeError) return "The server could not be reached. Check your connection.";
  return err instanceof Error ? err.message : String(err);
}

export const when = (iso: string | null | undefined): string =>
  iso ? new Date(iso).toLocaleString() : "never";

/** Reads `?token=` once and takes it out of the address bar and history (it is a secret). */
export function takeTokenFromUrl(): string | null {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search);
  }
  return token;
}

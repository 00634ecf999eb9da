import { LatchkeyError } from "../../../client/src/index.js";
import { client } from "../api.js";
import { field, form, h } from "../dom.js";

/** Six digits are a TOTP code: passwords are at least 8 characters. */
const TOTP_CODE = /^\d{6}$/;

/**
 * Runs `action`; when the server answers `step_up_required`, asks inside `host` for the
 * password (or a TOTP code), steps up, and runs it once more.
 */
export async function withStepUp(host: HTMLElement, action: () => Promise<void>): Promise<void> {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof LatchkeyError && err.code === "step_up_required")) throw err;
  }
  await new Promise<void>((resolve) => {
    const prompt = form(
      {
        label: "Confirm it is you",
        submit: "Confirm",
        onsubmit: async (el) => {
          const secret = (el.querySelector("input") as HTMLInputElement).value;
          await client.stepUp(
            TOTP_CODE.test(secret.trim()) ? { code: secret.trim() } : { password: secret },
          );
          prompt.remove();
          resolve();
        },
      },
      h(
        "p",
        { class: "hint" },
        "This change needs you to confirm your password (or a code from your authenticator app).",
      ),
      field("Password or authenticator code", {
        type: "password",
        autocomplete: "current-password",
        required: true,
      }),
    );
    host.append(prompt);
    prompt.querySelector("input")?.focus();
  });
  await action();
}

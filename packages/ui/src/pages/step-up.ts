import { LatchkeyError } from "../../../client/src/index.js";
import { client } from "../api.js";
import { actionButton, field, form, h, messages } from "../dom.js";

/** Six digits are a TOTP code: passwords are at least 8 characters. */
const TOTP_CODE = /^\d{6}$/;

/** What a "Password or authenticator code" field holds, as step-up and unlock take it. */
export const reauthProof = (secret: string): { code: string } | { password: string } =>
  TOTP_CODE.test(secret.trim()) ? { code: secret.trim() } : { password: secret };

/**
 * Runs `action`; when the server answers `step_up_required`, asks inside `host` for the
 * password, a TOTP code or (when the user has one) a passkey, steps up, and runs it once more.
 */
export async function withStepUp(host: HTMLElement, action: () => Promise<void>): Promise<void> {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof LatchkeyError && err.code === "step_up_required")) throw err;
  }
  // Without the list (a failed request) the prompt still works: the password way remains.
  const hasPasskey = await client.passkeys().then(
    (passkeys) => passkeys.length > 0,
    () => false,
  );
  await new Promise<void>((resolve) => {
    const done = () => {
      prompt.remove();
      resolve();
    };
    const passkeyMsg = messages();
    const secretForm = form(
      {
        label: "Confirm it is you",
        submit: "Confirm",
        onsubmit: async (el) => {
          await client.stepUp(reauthProof((el.querySelector("input") as HTMLInputElement).value));
          done();
        },
      },
      h(
        "p",
        { class: "hint" },
        hasPasskey
          ? "This change needs you to confirm your password (or a code from your authenticator app), or to use a passkey."
          : "This change needs you to confirm your password (or a code from your authenticator app).",
      ),
      field("Password or authenticator code", {
        type: "password",
        autocomplete: "current-password",
        required: true,
      }),
    );
    const prompt = h(
      "div",
      {},
      secretForm,
      hasPasskey
        ? actionButton("Use a passkey", { class: "secondary" }, passkeyMsg, async () => {
            await client.stepUpWithPasskey();
            done();
          })
        : null,
      passkeyMsg.el,
    );
    host.append(prompt);
    prompt.querySelector("input")?.focus();
  });
  await action();
}

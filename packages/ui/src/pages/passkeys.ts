import type { Passkey } from "../../../client/src/index.js";
import { client } from "../api.js";
import { actionButton, field, fieldValue, form, h, messages, when } from "../dom.js";
import { withStepUp } from "./step-up.js";

/** The server's limit (PASSKEY_NAME_MAX). */
const NAME_MAX = 64;

/** The account page's passkey list: add one on this device, rename, delete (with step-up). */
export function passkeysPanel(): HTMLElement {
  const body = h("div", {});
  const list = h("ul", { class: "passkeys", "aria-label": "Your passkeys" });
  const msg = messages();

  const reload = async () => {
    const passkeys = await client.passkeys();
    list.replaceChildren(
      ...(passkeys.length === 0 ? [h("li", { class: "hint" }, "No passkeys yet.")] : []),
      ...passkeys.map(item),
    );
  };

  const item = (p: Passkey): HTMLElement => {
    const li = h(
      "li",
      { "data-passkey": p.id },
      h("strong", {}, p.name),
      ` · added ${when(p.createdAt)} · last used ${when(p.lastUsedAt)} `,
      h("span", { class: "badge" }, p.backedUp ? "backed up (synced)" : "not backed up"),
      " ",
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Rename passkey ${p.name}`,
          onclick: () => {
            li.replaceWith(renameForm(p));
            list.querySelector("input")?.focus();
          },
        },
        "Rename",
      ),
      " ",
      actionButton(
        "Delete",
        { class: "danger", "aria-label": `Delete passkey ${p.name}` },
        msg,
        () =>
          withStepUp(body, async () => {
            await client.deletePasskey(p.id);
            await reload();
            msg.ok(`Deleted passkey ${p.name}.`);
          }),
      ),
    );
    return li;
  };

  const renameForm = (p: Passkey): HTMLElement =>
    h(
      "li",
      {},
      form(
        {
          label: `Rename passkey ${p.name}`,
          submit: "Save name",
          onsubmit: async (el) => {
            const renamed = await client.renamePasskey(p.id, fieldValue(el, "New name").trim());
            await reload();
            msg.ok(`Renamed the passkey to ${renamed.name}.`);
          },
        },
        field("New name", { value: p.name, required: true, maxlength: NAME_MAX }),
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => reload().catch(msg.error) },
          "Cancel",
        ),
      ),
    );

  const add = form(
    {
      label: "Add a passkey",
      submit: "Add a passkey",
      onsubmit: async (el) => {
        const name = fieldValue(el, "Passkey name").trim();
        const created = await client.registerPasskey(name || undefined);
        el.reset();
        await reload();
        msg.ok(`Added passkey ${created.name}.`);
      },
    },
    field(
      "Passkey name",
      { maxlength: NAME_MAX },
      "Optional: the device or password manager that keeps it.",
    ),
  );

  body.append(
    h(
      "p",
      {},
      "A passkey signs you in with this device's screen lock or a security key, without a password.",
    ),
    list,
    msg.el,
    add,
  );
  void reload().catch(msg.error);
  return body;
}

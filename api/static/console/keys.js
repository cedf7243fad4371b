// API keys page: create a key for a shop backend (its secret is shown once), list and revoke.

import { api } from "./api.js";
import { describeError } from "./common.js";
import { h, mount, toast } from "./dom.js";
import { formatDateTime, t } from "./i18n.js";

export function renderKeys(view, _ctx) {
  let alive = true;
  const list = h("div", { id: "key-list" });
  const revealed = h("div", { id: "key-revealed" });
  const error = h("p", { class: "form-error", role: "alert", id: "keys-error", hidden: true });
  const showError = (text) => {
    error.textContent = text;
    error.hidden = !text;
  };
  const name = h("input", { id: "key-name", type: "text", maxlength: "100", required: true, placeholder: t("keys.namePlaceholder") });

  async function load() {
    try {
      const data = await api.listKeys();
      if (alive) drawList(data.items);
    } catch (err) {
      if (alive) showError(describeError(err));
    }
  }

  function drawList(items) {
    if (!items.length) {
      mount(list, h("p", { class: "muted", id: "keys-empty" }, t("keys.empty")));
      return;
    }
    mount(
      list,
      h(
        "table",
        { class: "keys" },
        h("thead", null, h("tr", null, ...["keys.name", "keys.prefix", "keys.created", "keys.lastUsed", ""].map((k) => h("th", null, k ? t(k) : "")))),
        h(
          "tbody",
          null,
          items.map((key) =>
            h(
              "tr",
              { dataset: { keyId: key.id } },
              h("td", null, key.name),
              h("td", null, h("code", null, `${key.prefix}_…`)),
              h("td", null, formatDateTime(key.createdAt)),
              h("td", null, key.lastUsedAt ? formatDateTime(key.lastUsedAt) : t("keys.never")),
              h(
                "td",
                null,
                h("button", { type: "button", class: "btn btn-danger revoke", onclick: () => revoke(key) }, t("keys.revoke")),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function revoke(key) {
    if (!window.confirm(t("keys.confirmRevoke", { name: key.name }))) return;
    try {
      await api.revokeKey(key.id);
      toast(t("keys.revoked"));
      load();
    } catch (err) {
      toast(describeError(err), "error");
    }
  }

  function reveal(secret) {
    const field = h("input", { id: "key-secret", type: "text", readonly: true, value: secret, class: "secret" });
    mount(
      revealed,
      h(
        "div",
        { class: "notice notice-warn" },
        h("p", null, t("keys.copyOnce")),
        field,
        h(
          "button",
          {
            type: "button",
            class: "btn",
            id: "copy-key",
            onclick: async () => {
              field.select();
              try {
                await navigator.clipboard.writeText(secret);
                toast(t("keys.copied"));
              } catch (_) {
                document.execCommand("copy");
              }
            },
          },
          t("keys.copy"),
        ),
      ),
    );
  }

  const form = h(
    "form",
    {
      class: "inline-form",
      id: "new-key",
      onsubmit: async (event) => {
        event.preventDefault();
        showError("");
        if (!name.value.trim()) {
          showError(t("keys.needName"));
          return;
        }
        try {
          const created = await api.createKey(name.value.trim());
          name.value = "";
          reveal(created.key);
          load();
        } catch (err) {
          showError(describeError(err));
        }
      },
    },
    name,
    h("button", { type: "submit", class: "btn btn-primary", id: "create-key" }, t("keys.create")),
  );

  mount(
    view,
    h(
      "section",
      { class: "card api-keys" },
      h("h2", null, t("keys.title")),
      h("p", { class: "muted" }, t("keys.help")),
      form,
      error,
      revealed,
      list,
    ),
  );
  load();
  return () => {
    alive = false;
  };
}

// Sign in / register screen.

import { ApiError, api, setTokens } from "./api.js";
import { describeError } from "./common.js";
import { h, mount } from "./dom.js";
import { t } from "./i18n.js";

let mode = "signIn";

export function renderAuth(root, { onSignedIn, notice }) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const email = h("input", {
    id: "auth-email",
    name: "email",
    type: "email",
    required: true,
    autocomplete: "username",
    maxlength: 254,
  });
  const password = h("input", {
    id: "auth-password",
    name: "password",
    type: "password",
    required: true,
    minlength: mode === "register" ? 8 : 1,
    maxlength: 128,
    autocomplete: mode === "register" ? "new-password" : "current-password",
  });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block", id: "auth-submit" },
    t(mode === "register" ? "auth.submitRegister" : "auth.submitSignIn"),
  );

  const tab = (name) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        class: `tab${mode === name ? " active" : ""}`,
        "aria-selected": mode === name ? "true" : "false",
        id: `tab-${name}`,
        onclick: () => {
          mode = name;
          renderAuth(root, { onSignedIn });
        },
      },
      t(`auth.${name}`),
    );

  const form = h(
    "form",
    {
      class: "auth-form",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        if (!email.value || !password.value) {
          email.reportValidity();
          password.reportValidity();
          return;
        }
        submit.disabled = true;
        submit.textContent = t("auth.working");
        try {
          const call = mode === "register" ? api.register : api.login;
          const data = await call(email.value.trim(), password.value);
          setTokens(data.accessToken, data.refreshToken);
          onSignedIn(data.user);
        } catch (err) {
          error.textContent =
            mode === "signIn" && err instanceof ApiError && err.status === 401
              ? t("error.login")
              : describeError(err);
          error.hidden = false;
          submit.disabled = false;
          submit.textContent = t(mode === "register" ? "auth.submitRegister" : "auth.submitSignIn");
        }
      },
    },
    h("label", { for: "auth-email" }, t("auth.email")),
    email,
    h("label", { for: "auth-password" }, t("auth.password")),
    password,
    mode === "register" ? h("p", { class: "hint" }, t("auth.passwordHint")) : null,
    error,
    submit,
  );

  mount(
    root,
    h(
      "section",
      { class: "card auth-card" },
      h("h1", null, t("app.title")),
      h("p", { class: "muted" }, t("auth.welcome")),
      notice ? h("p", { class: "notice", role: "alert" }, notice) : null,
      h("div", { class: "tabs", role: "tablist" }, tab("signIn"), tab("register")),
      form,
    ),
  );
  email.focus();
}

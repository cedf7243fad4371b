// The console's shell: top bar (account, membership, quota, language), hash routing, views.
//   #/            new task + task list
//   #/task/<id>   one task, polled live
//   #/batches     recent batches; #/batch/<id> one batch's grid, polled live
//   #/keys        API keys for shop backends

import { api, isSignedIn, logOut, onSignedOut } from "./api.js";
import { renderAuth } from "./auth.js";
import { renderBatch, renderBatches } from "./batch.js";
import { describeError } from "./common.js";
import { h, mount, toast } from "./dom.js";
import { renderHome } from "./home.js";
import { renderKeys } from "./keys.js";
import { applyDocumentLang, formatDateTime, lang, setLang, t } from "./i18n.js";
import { renderTask } from "./task.js";

const topbar = document.getElementById("topbar");
const view = document.getElementById("view");

const state = { user: null, taskTypes: null, cleanup: null, notice: "", seq: 0 };

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function teardown() {
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
}

/** Reload the account (membership, quota) and redraw the bar; `redraw` also redraws the view. */
async function refreshAccount(redraw = false) {
  try {
    const data = await api.me();
    const before = JSON.stringify(state.user);
    state.user = data.user;
    drawTopbar();
    if (redraw || (before !== JSON.stringify(state.user) && needsAccountRedraw(before))) route();
  } catch (err) {
    if (err.status !== 401) toast(describeError(err), "error");
  }
}

/** The new-task form depends on membership and quota > 0; redraw it when either flips. */
function needsAccountRedraw(beforeJson) {
  const before = beforeJson ? JSON.parse(beforeJson) : null;
  if (!before || !state.user || !isHome()) return false;
  const canSubmit = (u) => u.membershipActive && u.quota > 0;
  return canSubmit(before) !== canSubmit(state.user);
}

/** The task types the server offers (GET /api/task/types): the form's choices come from them. */
async function loadTaskTypes() {
  try {
    state.taskTypes = (await api.taskTypes()).types;
  } catch (err) {
    toast(describeError(err), "error");
  }
}

function isHome() {
  return !/^#\/(task\/|keys|batch)/.test(window.location.hash);
}

function drawTopbar() {
  const user = state.user;
  const langButton = h(
    "button",
    {
      type: "button",
      class: "btn btn-ghost",
      id: "lang-switch",
      title: t("lang.switchTitle"),
      onclick: () => {
        setLang(lang() === "zh" ? "en" : "zh");
        drawTopbar();
        route();
      },
    },
    t("lang.switch"),
  );
  const account = user
    ? h(
        "div",
        { class: "account", id: "account" },
        h(
          "span",
          {
            class: `badge ${user.membershipActive ? "badge-member" : "badge-none"}`,
            id: "membership",
            dataset: { member: user.membershipActive ? "yes" : "no" },
          },
          user.membershipActive
            ? user.memberUntil
              ? t("account.memberUntil", { date: formatDateTime(user.memberUntil).split(" ")[0] })
              : t("account.member")
            : t("account.notMember"),
        ),
        h(
          "span",
          { class: `badge ${user.quota > 0 ? "badge-quota" : "badge-empty"}`, id: "quota", dataset: { quota: user.quota } },
          t("account.quota", { n: user.quota }),
        ),
        h("span", { class: "email muted", id: "user-email" }, user.email),
        h("a", { class: "btn btn-ghost", id: "nav-batches", href: "#/batches" }, t("batches.nav")),
        h("a", { class: "btn btn-ghost", id: "nav-keys", href: "#/keys" }, t("keys.nav")),
        h(
          "button",
          { type: "button", class: "btn btn-ghost", id: "sign-out", onclick: () => logOut() },
          t("auth.signOut"),
        ),
      )
    : null;
  mount(
    topbar,
    h(
      "a",
      { class: "brand", href: "#/" },
      h("img", { src: "/console/static/icon.svg", alt: "", width: "28", height: "28" }),
      h("span", null, t("app.brand")),
    ),
    h("div", { class: "topbar-right" }, account, langButton),
  );
}

async function route() {
  teardown();
  const seq = ++state.seq;
  if (!isSignedIn()) {
    state.user = null;
    drawTopbar();
    const notice = state.notice;
    state.notice = "";
    renderAuth(view, {
      notice,
      onSignedIn: (user) => {
        state.user = user;
        drawTopbar();
        route();
      },
    });
    return;
  }
  if (!state.user || !state.taskTypes) {
    mount(view, h("div", { class: "loading" }, h("span", { class: "spinner" })));
    await Promise.all([state.user ? null : refreshAccount(), state.taskTypes ? null : loadTaskTypes()]);
    if (seq !== state.seq) return;
    if (!state.user || !state.taskTypes) {
      if (isSignedIn()) mount(view, h("p", { class: "form-error" }, t("error.network")));
      return;
    }
  }
  const ctx = { user: state.user, taskTypes: state.taskTypes, refreshAccount, navigate };
  const hash = window.location.hash;
  const match = hash.match(/^#\/task\/([^/?#]+)/);
  const batch = hash.match(/^#\/batch\/([^/?#]+)/);
  if (match) state.cleanup = renderTask(view, ctx, decodeURIComponent(match[1]));
  else if (batch) state.cleanup = renderBatch(view, ctx, decodeURIComponent(batch[1]));
  else if (hash.startsWith("#/batches")) state.cleanup = renderBatches(view, ctx);
  else if (hash.startsWith("#/keys")) state.cleanup = renderKeys(view, ctx);
  else state.cleanup = renderHome(view, ctx);
  window.scrollTo(0, 0);
}

onSignedOut((reason) => {
  state.user = null;
  state.notice = reason === "expired" ? t("auth.expired") : "";
  route();
});

window.addEventListener("hashchange", route);
window.addEventListener("pagehide", teardown);
window.addEventListener("pageshow", (event) => {
  if (event.persisted) route();
});

applyDocumentLang();
drawTopbar();
route();

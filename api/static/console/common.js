// Pieces several views share: status tags, labels, error text.

import { h, mount } from "./dom.js";
import { label, t } from "./i18n.js";
import { Poller } from "./poller.js";

export const STATUSES = ["pending", "processing", "success", "failed"];
export const ACTIVE = new Set(["pending", "processing"]);

export function clampProgress(value) {
  const number = Number(value);
  return Number.isFinite(number) ? Math.min(100, Math.max(0, Math.round(number))) : 0;
}

/** Previous / "page 2 of 5, 43 tasks" / next under a list; `go(offset)` loads another page. */
export function drawPager(pager, data, pageSize, labelKey, go) {
  const pages = Math.max(1, Math.ceil(data.total / pageSize));
  const page = Math.floor(data.offset / pageSize) + 1;
  mount(
    pager,
    h("button", { type: "button", class: "btn", id: "page-prev", disabled: page <= 1, onclick: () => go(Math.max(0, data.offset - pageSize)) }, t("list.prev")),
    h("span", { class: "muted" }, t(labelKey, { page, pages, total: data.total })),
    h("button", { type: "button", class: "btn", id: "page-next", disabled: page >= pages, onclick: () => go(data.offset + pageSize) }, t("list.next")),
  );
}

/** A status tag with the seed's label and colour; `processing` spins. */
export function statusTag(status) {
  const known = STATUSES.includes(status);
  return h(
    "span",
    { class: `tag tag-${known ? status : "pending"}`, dataset: { status } },
    status === "processing" ? h("span", { class: "spinner", "aria-hidden": "true" }) : null,
    known ? t(`status.${status}`) : status,
  );
}

/** Labels live in i18n.js keyed by the server's values; a value without a label shows itself. */
export function typeLabel(type) {
  return label(`type.${type}`, type);
}

export function paramLabel(name) {
  return label(`task.${name}`, label(`new.${name}`, name));
}

export function valueLabel(name, value) {
  return label(`${name}.${value}`, String(value));
}

/** A result's label from its file name: matting.png → 抠图, pose-03.png → 模特图 3. */
export function resultLabel(url, index) {
  let name = "";
  try {
    name = decodeURIComponent(new URL(url, window.location.href).pathname.split("/").pop() || "");
  } catch (_) {
    name = "";
  }
  const stem = name.replace(/\.[a-z0-9]+$/i, "");
  if (stem === "matting" || stem === "white-bg" || stem === "enhanced") return t(`result.${stem}`);
  const pose = stem.match(/(\d+)$/);
  if (pose && /pose|model/i.test(stem)) return t("result.pose", { n: Number(pose[1]) });
  return t("result.other", { n: index + 1 });
}

/** A file name for saving a result: the last path segment, or result-N.png. */
export function resultFileName(url, index) {
  try {
    const name = decodeURIComponent(new URL(url, window.location.href).pathname.split("/").pop() || "");
    if (/^[\w.-]+\.(png|jpe?g|webp)$/i.test(name)) return name;
  } catch (_) {
    /* fall through */
  }
  return `result-${index + 1}.png`;
}

function fieldMessages(details) {
  const fields = details && details.fields;
  if (!fields || typeof fields !== "object") return "";
  const parts = [];
  const walk = (prefix, value) => {
    if (Array.isArray(value)) parts.push(`${prefix}: ${value.join(" ")}`);
    else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix}.${key}` : key, inner);
    } else parts.push(`${prefix}: ${value}`);
  };
  walk("", fields);
  return parts.join("; ");
}

/** Plain words for an API error (the envelope's code first, then the HTTP status). */
export function describeError(err) {
  if (!err) return t("error.generic", { message: "?" });
  if (err.status === 0) return t("error.network");
  const message = fieldMessages(err.details) || err.message || "";
  const details = err.details || {};
  switch (err.code) {
    case 1003:
      // A batch says how many units it needs.
      return typeof details.needed === "number"
        ? t("error.1003batch", { needed: details.needed, balance: details.balance })
        : t("error.1003");
    case 1005:
      return t("error.1005", { limit: details.limit ?? "?" });
    case 1002:
    case 1004:
    case 4003:
    case 4004:
      return t(`error.${err.code}`);
    case 4001:
      return err.status === 413 ? t("error.413") : t("error.4001", { message });
    case 4009:
      return t("error.4009", { message });
    default:
      break;
  }
  if (err.status === 413) return t("error.413");
  if (err.status === 429) return t("error.429");
  if (err.status === 503) return t("error.503", { message });
  if (err.status === 409) return t("error.4009", { message });
  return t("error.generic", { message: message || `HTTP ${err.status}` });
}

/**
 * The items of a batch the server refused (400/4001 with `details.items` or
 * `details.fields.items`: {"3": {"inputImageUrl": ["..."]}}), as index → message.
 */
export function batchErrorItems(err) {
  const refused = new Map();
  if (!err || err.code !== 4001 || !err.details) return refused;
  const items = err.details.items || (err.details.fields && err.details.fields.items);
  if (!items || typeof items !== "object" || Array.isArray(items)) return refused;
  for (const [index, problems] of Object.entries(items)) {
    if (!/^\d+$/.test(index)) continue;
    const text = problems && typeof problems === "object"
      ? Object.entries(problems).map(([field, why]) => `${field}: ${[].concat(why).join(" ")}`).join("; ")
      : String(problems);
    refused.set(Number(index), text);
  }
  return refused;
}

export function newIdempotencyKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/**
 * Save a downloaded response (a zip fetched with the Authorization header, which a plain link
 * cannot send) under the server's Content-Disposition name, or `fallbackName`.
 */
export async function saveDownload(response, fallbackName) {
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename\*?=(?:UTF-8'')?"?([^";]+)"?/i);
  let name = fallbackName;
  if (match) {
    try {
      name = decodeURIComponent(match[1]);
    } catch (_) {
      name = match[1];
    }
  }
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name.replace(/[\\/]/g, "_"), hidden: true });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * What a page polling one resource shows when a poll goes wrong: the network retry delay or the
 * error in words above the content, "not found" in place of it, and after the attempt limit a
 * manual refresh. Spread into the Poller's options; `setNotice()` clears the notice.
 */
export function pollNotices({ notice, content, notFound, restart }) {
  const setNotice = (...children) => {
    mount(notice, ...children);
    notice.hidden = children.length === 0;
  };
  return {
    setNotice,
    onError: (err, delay) => {
      if (err.status === 401) return false;
      if (err.status === 404) {
        mount(content, h("p", { class: "form-error", role: "alert" }, notFound));
        return false;
      }
      setNotice(
        h(
          "p",
          { class: err.status === 0 ? "warn" : "form-error" },
          err.status === 0 ? t("task.networkRetry", { s: Math.round(delay / 1000) }) : describeError(err),
        ),
      );
      return true;
    },
    onRecover: () => setNotice(),
    onGiveUp: (attempts) => {
      setNotice(
        h("p", { class: "warn" }, t("task.pollStopped", { n: attempts })),
        h(
          "button",
          {
            type: "button",
            class: "btn",
            id: "manual-refresh",
            onclick: () => {
              setNotice();
              restart();
            },
          },
          t("task.manualRefresh"),
        ),
      );
    },
  };
}

/** A danger button that asks once inline ("sure?" + confirm + ×) before it runs `run`. */
export function confirmedAction({ id, confirmId, label, question, run }) {
  const row = h("div", { class: "actions" });
  const ask = () =>
    mount(row, h("button", { type: "button", class: "btn btn-danger-outline", id, onclick: confirm }, label));
  const confirm = () =>
    mount(
      row,
      h("span", { class: "muted" }, question),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-danger",
          id: confirmId,
          onclick: async (event) => {
            event.target.disabled = true;
            await run();
            ask();
          },
        },
        label,
      ),
      h("button", { type: "button", class: "btn", "aria-label": t("common.dismiss"), onclick: ask }, "×"),
    );
  ask();
  return row;
}

/** A list's poller: `draw(data)` when the answer changed, and a failed poll said in `error` until one succeeds. */
export function listPoller({ load, isActive, draw, error }) {
  const clear = () => {
    error.hidden = true;
  };
  return new Poller({
    load,
    isActive,
    onChange: (data) => {
      clear();
      draw(data);
    },
    onRecover: clear,
    onError: (err) => {
      if (err.status === 401) return false;
      error.textContent = describeError(err);
      error.hidden = false;
      return true;
    },
  });
}

// Pieces several views share: status tags, labels, error text.

import { h } from "./dom.js";
import { label, t } from "./i18n.js";

export const STATUSES = ["pending", "processing", "success", "failed"];
export const ACTIVE = new Set(["pending", "processing"]);

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
  switch (err.code) {
    case 1002:
    case 1003:
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

export function newIdempotencyKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// A tiny element builder. Strings always become text nodes and attributes go through
// setAttribute, so data from users or the server can never be parsed as HTML.

const PROPERTY_KEYS = new Set(["value", "checked", "disabled", "selected", "hidden", "multiple"]);

/**
 * h("a", {class: "x", href: url, onclick: fn, dataset: {id}}, "text", child, [more])
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (PROPERTY_KEYS.has(key)) el[key] = value;
      else if (key === "href" || key === "src") el.setAttribute(key, safeUrl(value));
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Only http(s), blob:, data:image and same-origin relative URLs reach href/src. */
export function safeUrl(value) {
  const text = String(value);
  if (text.startsWith("#") || text.startsWith("/")) return text;
  try {
    const url = new URL(text, window.location.href);
    if (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "blob:") return text;
    if (url.protocol === "data:" && text.startsWith("data:image/")) return text;
  } catch (_) {
    /* fall through */
  }
  return "about:blank";
}

/** Replace the element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(message, kind = "info", ms = 4000) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.appendChild(item);
  setTimeout(() => item.remove(), ms);
}

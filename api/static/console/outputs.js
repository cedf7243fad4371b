// basic_clean's output options: a marketplace preset, the "advanced" fold (size, fill, format,
// background, shadow) and a live preview of where the product lands on the output canvas.

import { h } from "./dom.js";
import { t } from "./i18n.js";

// The server's presets (shared/output_params.py PRESETS); a test holds the two equal. Their rules,
// in both languages, are i18n.js's `out.rule.<name>` (the English ones are the server's own text).
export const PRESETS = {
  "amazon": {
    "params": { "outputSize": 2000, "format": "jpeg", "fill": 0.88, "backgroundColor": "#FFFFFF", "shadow": "none" }
  },
  "taobao": {
    "params": { "outputSize": 800, "format": "jpeg", "maxBytes": 3145728 }
  },
  "jd": {
    "params": { "outputSize": 800, "format": "jpeg" }
  },
  "shopify": {
    "params": { "outputSize": 2048, "format": "jpeg" }
  },
  "ebay": {
    "params": { "outputSize": 1600, "format": "jpeg" }
  }
};

/** The params this module draws (shared/output_params.py OUTPUT_KEYS); the generic form skips them. */
export const OUTPUT_KEYS = ["preset", "outputSize", "fill", "format", "outputQuality", "backgroundColor", "shadow", "maxBytes"];

const DEFAULTS = { fill: 0.85, format: "png", backgroundColor: "#FFFFFF", shadow: "none" };
const FORMATS = ["png", "jpeg", "webp"];
const SHADOWS = ["none", "soft"];
const PREVIEW_SIDE = 220;

// Kept across re-renders; "" means "not set" (the preset's value, or today's default).
export const outputDraft = { preset: "", outputSize: "", fill: "", format: "", outputQuality: "", backgroundColor: "", shadow: "" };

/** The params to send: only what the seller set (none at all keeps today's outputs). */
export function outputParams(d = outputDraft) {
  const params = {};
  if (d.preset) params.preset = d.preset;
  if (d.outputSize) params.outputSize = /^\d+$/.test(d.outputSize) ? Number(d.outputSize) : d.outputSize;
  if (d.fill !== "") params.fill = Number(d.fill);
  if (d.format) params.format = d.format;
  if (d.outputQuality !== "") params.outputQuality = Number(d.outputQuality);
  if (d.backgroundColor) params.backgroundColor = d.backgroundColor.toUpperCase();
  if (d.shadow) params.shadow = d.shadow;
  return params;
}

/** What the worker will use: defaults, then the preset, then what was set. */
export function effective(d = outputDraft) {
  return { ...DEFAULTS, ...(d.preset ? PRESETS[d.preset].params : {}), ...outputParams(d) };
}

export function renderOutputOptions(previewImg) {
  const d = outputDraft;
  const rule = h("p", { class: "muted preset-rule", id: "preset-rule" });
  const preview = h("canvas", { id: "placement-preview", class: "placement-preview checker", width: PREVIEW_SIDE, height: PREVIEW_SIDE });
  const caption = h("p", { class: "muted placement-caption", id: "placement-caption" });
  const set = (key) => (event) => {
    d[key] = event.target.value;
    redraw();
  };
  const choice = (id, key, values, label) =>
    h(
      "select",
      { id, name: key, onchange: set(key) },
      h("option", { value: "", selected: !d[key] }, t("out.default")),
      values.map((value) => h("option", { value, selected: d[key] === value }, label(value))),
    );
  const field = (label, control) => h("label", { class: "out-field" }, h("span", null, label), control);

  const fillValue = h("output", { id: "fill-value" });
  const fill = h("input", {
    type: "range", id: "out-fill", min: 0.5, max: 0.98, step: 0.01, value: d.fill || DEFAULTS.fill,
    oninput: (event) => {
      d.fill = event.target.value;
      redraw();
    },
  });
  const advanced = h(
    "details",
    { class: "out-advanced", id: "out-advanced" },
    h("summary", null, t("out.advanced")),
    field(t("out.size"), h("input", { id: "out-size", type: "text", placeholder: t("out.sizeHint"), value: d.outputSize, oninput: set("outputSize") })),
    field(t("out.fill"), h("span", { class: "fill-row" }, fill, fillValue)),
    field(t("out.format"), choice("out-format", "format", FORMATS, (f) => f.toUpperCase())),
    field(t("out.quality"), h("input", { id: "out-quality", type: "number", min: 1, max: 100, placeholder: "92", value: d.outputQuality, oninput: set("outputQuality") })),
    field(t("out.background"), h("input", { id: "out-background", type: "color", value: (d.backgroundColor || DEFAULTS.backgroundColor).toLowerCase(), oninput: set("backgroundColor") })),
    field(t("out.shadow"), choice("out-shadow", "shadow", SHADOWS, (s) => t(`out.shadow.${s}`))),
  );

  function redraw() {
    rule.textContent = d.preset ? t(`out.rule.${d.preset}`) : t("out.noPreset");
    const e = effective(d);
    fillValue.textContent = `${Math.round(e.fill * 100)} %`;
    if (d.fill === "") fill.value = e.fill;
    drawPlacement(preview, caption, previewImg, e);
  }
  previewImg.addEventListener("load", redraw);
  redraw();

  const element = h(
    "div",
    { class: "out-options", id: "out-options" },
    field(t("out.preset"), choice("out-preset", "preset", Object.keys(PRESETS), (p) => t(`out.preset.${p}`))),
    rule,
    advanced,
    h("div", { class: "placement" }, h("span", { class: "label" }, t("out.placement")), preview, caption),
  );
  return { element, redraw };
}

/** The output canvas as the worker will lay it out, drawn small; the product box is estimated here. */
function drawPlacement(canvas, caption, img, e) {
  const ctx = canvas.getContext("2d");
  const natural = img.naturalWidth && img.getAttribute("src") ? [img.naturalWidth, img.naturalHeight] : null;
  const size = parseSize(e.outputSize) || (natural ? [Math.max(...natural), Math.max(...natural)] : [1, 1]);
  const scale = PREVIEW_SIDE / Math.max(...size);
  canvas.width = Math.max(1, Math.round(size[0] * scale));
  canvas.height = Math.max(1, Math.round(size[1] * scale));
  ctx.fillStyle = /^#[0-9a-f]{6}$/i.test(e.backgroundColor) ? e.backgroundColor : "#FFFFFF";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const sizeText = e.outputSize ? `${size[0]}×${size[1]}` : t("out.inputSize");
  caption.textContent = `${sizeText} · ${String(e.format).toUpperCase()} · ${t("out.fill")} ${Math.round(e.fill * 100)} %`;
  if (!natural) return;
  const [bx, by, bw, bh] = productBox(img);
  const k = e.fill * Math.min(canvas.width / bw, canvas.height / bh);
  const [tw, th] = [bw * k, bh * k];
  const [ox, oy] = [(canvas.width - tw) / 2, (canvas.height - th) / 2];
  if (e.shadow === "soft") {
    const gradient = ctx.createRadialGradient(canvas.width / 2, oy + th, 1, canvas.width / 2, oy + th, tw / 2);
    gradient.addColorStop(0, "rgba(0,0,0,0.3)");
    gradient.addColorStop(1, "rgba(0,0,0,0)");
    ctx.fillStyle = gradient;
    ctx.fillRect(ox - tw * 0.1, oy + th - th * 0.08, tw * 1.2, th * 0.16);
  }
  ctx.drawImage(img, bx, by, bw, bh, ox, oy, tw, th);
  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = "rgba(22,119,255,0.9)";
  ctx.strokeRect(ox + 0.5, oy + 0.5, tw - 1, th - 1);
}

function parseSize(value) {
  if (value === undefined || value === "") return null;
  const match = String(value).trim().toLowerCase().match(/^(\d{1,5})(?:x(\d{1,5}))?$/);
  if (!match) return null;
  return [Number(match[1]), Number(match[2] || match[1])];
}

/** The product's box in the photo: pixels far from the border's colour (a guess the worker refines). */
function productBox(img) {
  const [w, h] = [img.naturalWidth, img.naturalHeight];
  const k = Math.min(1, 128 / Math.max(w, h));
  const [sw, sh] = [Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k))];
  const probe = document.createElement("canvas");
  probe.width = sw;
  probe.height = sh;
  const ctx = probe.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0, sw, sh);
  let data;
  try {
    data = ctx.getImageData(0, 0, sw, sh).data;
  } catch (_) {
    return [0, 0, w, h]; // another origin's image cannot be read: the whole photo stands in
  }
  const at = (x, y) => (y * sw + x) * 4;
  const border = [0, 0, 0];
  let n = 0;
  for (let x = 0; x < sw; x++) for (const y of [0, sh - 1]) { for (let c = 0; c < 3; c++) border[c] += data[at(x, y) + c]; n++; }
  for (let y = 0; y < sh; y++) for (const x of [0, sw - 1]) { for (let c = 0; c < 3; c++) border[c] += data[at(x, y) + c]; n++; }
  for (let c = 0; c < 3; c++) border[c] /= n;
  let [x0, y0, x1, y1] = [sw, sh, -1, -1];
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const i = at(x, y);
      const diff = Math.max(...[0, 1, 2].map((c) => Math.abs(data[i + c] - border[c])));
      if (diff > 40) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  if (x1 < 0) return [0, 0, w, h];
  return [x0 / k, y0 / k, (x1 - x0 + 1) / k, (y1 - y0 + 1) / k];
}

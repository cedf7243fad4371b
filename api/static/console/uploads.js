// Many photos picked or dropped at once: each is uploaded (a few at a time, with its own
// progress) while the seller chooses the options, then they become the items of one batch.
// The list lives here, outside any view, so uploads go on across re-renders.

import { api } from "./api.js";
import { describeError, newIdempotencyKey } from "./common.js";
import { h, mount, safeUrl } from "./dom.js";
import { t } from "./i18n.js";

export const MAX_UPLOAD_MB = 20;
/** Items in one batch: the server's default MAX_BATCH_ITEMS (a server set lower answers 4001). */
export const MAX_BATCH_FILES = 100;
/** Uploads at once: enough to keep the line busy, leaving the browser's other connections to this host for polling. */
const PARALLEL_UPLOADS = 3;
const REF_MAX = 100;

/**
 * One photo of the batch being put together.
 * state: "queued" → "uploading" (sent %) → "uploaded" (url), or "failed" (error; retryable when a new upload may work).
 */
let nextId = 1;
export const batchDraft = { entries: [], idempotencyKey: newIdempotencyKey() };
let running = 0;
let listener = null;

/** The form on screen follows the list through this one listener (called with the entry that changed, or null). */
export function onBatchChange(fn) {
  listener = fn;
}

function changed(entry = null) {
  if (listener) listener(entry);
}

/** The set of items changed: a new submission gets a new Idempotency-Key (a double click keeps it). */
function itemsChanged() {
  batchDraft.idempotencyKey = newIdempotencyKey();
  changed();
}

/** Why a file cannot be uploaded, or "" when it can. */
export function fileProblem(file) {
  if (!/^image\//.test(file.type)) return t("new.badFile");
  if (file.size > MAX_UPLOAD_MB * 1024 * 1024) {
    return t("new.tooBig", { size: (file.size / 1048576).toFixed(1), max: MAX_UPLOAD_MB });
  }
  return "";
}

/** Add files and start uploading them; answers how many did not fit in one batch. */
export function addFiles(files) {
  const room = Math.max(0, MAX_BATCH_FILES - batchDraft.entries.length);
  const taken = [...files].slice(0, room);
  for (const file of taken) {
    const problem = fileProblem(file);
    batchDraft.entries.push({
      id: nextId++,
      name: file.name,
      ref: uniqueRef(file.name),
      file,
      previewSrc: problem ? "" : URL.createObjectURL(file),
      url: "",
      state: problem ? "failed" : "queued",
      sent: 0,
      error: problem,
      retryable: !problem,
    });
  }
  itemsChanged();
  pump();
  return files.length - taken.length;
}

/** Add a photo that needs no upload (a pasted URL, or the single photo uploaded before). */
export function addSource({ name, url, previewSrc }) {
  if (batchDraft.entries.length >= MAX_BATCH_FILES) return false;
  batchDraft.entries.push({
    id: nextId++,
    name,
    ref: uniqueRef(name),
    file: null,
    previewSrc,
    url,
    state: "uploaded",
    sent: 100,
    error: "",
    retryable: false,
  });
  itemsChanged();
  return true;
}

export function removeEntry(entry) {
  if (entry.controller) entry.controller.abort();
  if (entry.previewSrc.startsWith("blob:")) URL.revokeObjectURL(entry.previewSrc);
  batchDraft.entries = batchDraft.entries.filter((other) => other !== entry);
  itemsChanged();
}

export function clearBatch() {
  for (const entry of [...batchDraft.entries]) removeEntry(entry);
}

/** Upload a failed photo again. */
export function retryEntry(entry) {
  if (!entry.file) return;
  entry.state = "queued";
  entry.error = "";
  entry.url = "";
  changed(entry);
  pump();
}

/** The server refused this item of a batch (e.g. its upload link expired): say why; a file may be uploaded again. */
export function refuseEntry(entry, message) {
  entry.state = "failed";
  entry.error = message;
  entry.retryable = Boolean(entry.file);
  batchDraft.idempotencyKey = newIdempotencyKey();
  changed(entry);
}

/** The photos ready to be items of the batch. */
export function uploaded() {
  return batchDraft.entries.filter((entry) => entry.state === "uploaded");
}

export function counts() {
  const count = (...states) => batchDraft.entries.filter((entry) => states.includes(entry.state)).length;
  return {
    total: batchDraft.entries.length,
    uploaded: count("uploaded"),
    waiting: count("queued", "uploading"),
    failed: count("failed"),
  };
}

function pump() {
  while (running < PARALLEL_UPLOADS) {
    const next = batchDraft.entries.find((entry) => entry.state === "queued");
    if (!next) return;
    upload(next);
  }
}

async function upload(entry) {
  running += 1;
  entry.state = "uploading";
  entry.sent = 0;
  entry.controller = new AbortController();
  changed(entry);
  try {
    const data = await api.upload(entry.file, {
      signal: entry.controller.signal,
      onProgress: (loaded, total) => {
        entry.sent = Math.round((100 * loaded) / total);
        changed(entry);
      },
    });
    entry.url = data.url;
    entry.state = "uploaded";
    entry.error = "";
  } catch (err) {
    if (err && err.name === "AbortError") return; // removed from the list
    entry.state = "failed";
    entry.error = describeError(err);
    entry.retryable = err.status !== 413 && err.status !== 400;
  } finally {
    running -= 1;
    entry.controller = null;
    changed(entry);
    pump();
  }
}

/**
 * The item's ref: the file name without its extension, made valid (1-100 characters, no slash,
 * backslash or control character, not "." or "..") and unique in the batch. It names the item's
 * folder in the batch's zip.
 */
function uniqueRef(fileName) {
  let base = String(fileName)
    .replace(/\.[a-z0-9]{1,5}$/i, "")
    .replace(/[\\/\u0000-\u001f\u007f]/g, "_")
    .trim()
    .slice(0, REF_MAX - 4);
  if (!base || base === "." || base === "..") base = "photo";
  const taken = new Set(batchDraft.entries.map((entry) => entry.ref));
  let ref = base;
  for (let n = 2; taken.has(ref); n++) ref = `${base}-${n}`;
  return ref;
}

// ---------------------------------------------------------------- the list under the drop zone

/** The photos of the batch being put together, each with its upload state; `update(entry)` redraws one. */
export function renderBatchFiles() {
  const rows = new Map();
  const summary = h("span", { id: "batch-files-summary", role: "status" });
  const list = h("ul", { class: "file-grid", id: "batch-files-list" });

  function row(entry) {
    const thumb = h("img", { alt: "", loading: "lazy" });
    if (entry.previewSrc) thumb.setAttribute("src", safeUrl(entry.previewSrc));
    const state = h("span", { class: "file-state" });
    const item = h(
      "li",
      { class: "file-item", dataset: { ref: entry.ref } },
      h("span", { class: "file-thumb checker" }, thumb),
      h("span", { class: "file-name", title: entry.name }, entry.name),
      state,
      h(
        "button",
        {
          type: "button",
          class: "file-remove",
          "aria-label": t("batch.remove", { name: entry.name }),
          title: t("batch.remove", { name: entry.name }),
          onclick: () => removeEntry(entry),
        },
        "×",
      ),
    );
    const draw = () => {
      item.dataset.state = entry.state;
      if (entry.state === "uploading") {
        const bar = state.querySelector("progress");
        if (bar) bar.value = entry.sent;
        else mount(state, h("progress", { max: "100", value: entry.sent, "aria-label": t("batch.uploadingFile", { name: entry.name }) }));
      } else if (entry.state === "failed") {
        mount(
          state,
          h("span", { class: "file-error" }, entry.error),
          entry.retryable
            ? h("button", { type: "button", class: "btn-link", onclick: () => retryEntry(entry) }, t("batch.retryUpload"))
            : null,
        );
      } else {
        mount(state, h("span", { class: entry.state === "queued" ? "muted" : null }, t(`batch.file.${entry.state}`)));
      }
    };
    draw();
    return { item, draw };
  }

  function drawAll() {
    const keep = new Set(batchDraft.entries);
    for (const [entry, { item }] of rows) {
      if (!keep.has(entry)) {
        item.remove();
        rows.delete(entry);
      }
    }
    for (const entry of batchDraft.entries) {
      if (!rows.has(entry)) {
        const made = row(entry);
        rows.set(entry, made);
        list.appendChild(made.item);
      }
    }
    drawSummary();
  }

  let lastSummary = "";
  function drawSummary() {
    const c = counts();
    const parts = [t("batch.filesUploaded", { done: c.uploaded, total: c.total })];
    if (c.failed) parts.push(t("batch.filesFailed", { n: c.failed }));
    const text = parts.join(" · ");
    // A status region is read out on change: upload percentages would be noise.
    if (text !== lastSummary) summary.textContent = lastSummary = text;
  }

  function update(entry) {
    if (!entry || !rows.has(entry)) drawAll();
    else {
      rows.get(entry).draw();
      drawSummary();
    }
  }

  const element = h(
    "div",
    { class: "batch-files", id: "batch-files" },
    h(
      "div",
      { class: "batch-files-head" },
      summary,
      h("button", { type: "button", class: "btn btn-link", id: "batch-clear", onclick: clearBatch }, t("batch.clear")),
    ),
    list,
  );
  drawAll();
  return { element, update };
}

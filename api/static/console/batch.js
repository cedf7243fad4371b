// Batches: the recent ones (#/batches) and one batch's page (#/batch/<id>), a grid of its photos
// (the input, then the result once done) with each item's status and progress, the counts and
// overall progress, cancel and download-all. Both poll while something is still running.

import { api } from "./api.js";
import { ACTIVE, clampProgress, confirmedAction, describeError, drawPager, listPoller, pollNotices, saveDownload, statusTag, typeLabel } from "./common.js";
import { h, mount, safeUrl, toast } from "./dom.js";
import { formatDateTime, t } from "./i18n.js";
import { Poller, maxAttemptsSetting } from "./poller.js";

const PAGE_SIZE = 10;
const COUNTED = ["pending", "processing", "success", "failed", "cancelled"];
const listState = { offset: 0 };

/** A batch's tag: waiting, running (spins), or done (green when every item succeeded, red when none did). */
function batchTag(batch) {
  const status = batch.status;
  let tone = status === "completed" ? "success" : status;
  if (status === "completed" && batch.counts.failed > 0) tone = batch.counts.success > 0 ? "partial" : "failed";
  return h(
    "span",
    { class: `tag tag-${tone}`, dataset: { status } },
    status === "processing" ? h("span", { class: "spinner", "aria-hidden": "true" }) : null,
    t(`batchStatus.${status}`),
  );
}

/** A cancelled item is `failed` with the cancel message: it gets a tag of its own. */
function isCancelled(task) {
  return task.status === "failed" && /取消|cancel/i.test(task.errorMessage || "");
}

function itemTag(task) {
  if (!isCancelled(task)) return statusTag(task.status);
  return h("span", { class: "tag tag-cancelled", dataset: { status: "cancelled" } }, t("status.cancelled"));
}

function progressBar(id, label) {
  const bar = h("div", { class: "progress-bar" });
  const element = h(
    "div",
    { class: "progress", id, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-label": label },
    bar,
  );
  const set = (value) => {
    const progress = clampProgress(value);
    if (element.getAttribute("aria-valuenow") === String(progress)) return;
    element.setAttribute("aria-valuenow", String(progress));
    bar.style.width = `${progress}%`;
  };
  return { element, set };
}

/**
 * "3 photos · 1 processing · 2 succeeded": the counts that are not zero, in the order items move
 * through; with the tasks at hand, cancelled items are told apart from failed ones.
 */
function countsText(batch) {
  const counts = { ...batch.counts, cancelled: (batch.tasks || []).filter(isCancelled).length };
  counts.failed -= counts.cancelled;
  const parts = COUNTED.filter((status) => counts[status] > 0).map((status) =>
    t(`batch.count.${status}`, { n: counts[status] }),
  );
  return [t("batch.count.total", { n: batch.total }), ...parts].join(" · ");
}

// ---------------------------------------------------------------- one batch

export function renderBatch(root, ctx, batchId) {
  const content = h("div", { class: "batch-content", id: "batch-content" });
  const notice = h("div", { class: "poll-notice", id: "poll-notice", role: "status", hidden: true });
  mount(
    root,
    h(
      "div",
      { class: "task-page batch-page" },
      h("a", { href: "#/batches", class: "back-link" }, t("batch.back")),
      h("section", { class: "card", id: "batch-card" }, notice, content),
    ),
  );
  mount(content, h("div", { class: "loading" }, h("span", { class: "spinner" })));

  let view = null;
  let completedBefore = null;
  const notices = pollNotices({ notice, content, notFound: t("batch.notFound"), restart: () => poller.start() });
  const poller = new Poller({
    ...notices,
    maxAttempts: maxAttemptsSetting(),
    load: (signal) => api.getBatch(batchId, signal),
    isActive: (batch) => batch.status !== "completed",
    onChange: (batch) => {
      notices.setNotice();
      if (!view) {
        view = batchView(batch, { cancel, download });
        mount(content, view.element);
      }
      view.update(batch);
      // Failed and cancelled items gave their units back: reload the quota once the batch ends.
      const completed = batch.status === "completed";
      if (completed && completedBefore === false) ctx.refreshAccount();
      completedBefore = completed;
    },
  });

  async function cancel() {
    try {
      const batch = await api.cancelBatch(batchId);
      toast(t("batch.cancelled"));
      view.update(batch);
    } catch (err) {
      toast(describeError(err), "error");
    }
    poller.start(); // the batch's end reloads the quota (the refunds)
  }

  async function download(button) {
    button.disabled = true;
    button.textContent = t("task.downloading");
    try {
      await saveDownload(await api.downloadBatchZip(batchId), `batch-${batchId}.zip`);
    } catch (err) {
      toast(describeError(err), "error", 6000);
    } finally {
      button.disabled = false;
      button.textContent = t("batch.downloadAll");
    }
  }

  poller.start();
  return () => poller.stop();
}

/**
 * The page of one batch, built on the first answer and updated in place after: every poll brings
 * freshly signed result links, so an item's picture is replaced only when it shows another file.
 */
function batchView(batch, { cancel, download }) {
  const tag = h("span", { id: "batch-status" });
  const facts = h("p", { class: "muted small", id: "batch-facts" });
  const overall = progressBar("batch-progress", t("batch.progress"));
  const progressValue = h("span", { id: "batch-progress-value" });
  const countsLine = h("span", { id: "batch-counts", class: "muted" });
  // Read out when an item ends, not on every percent.
  const summary = h("p", { class: "visually-hidden", id: "batch-summary", role: "status", "aria-live": "polite" });
  const downloadButton = h(
    "button",
    { type: "button", class: "btn btn-primary", id: "download-batch", onclick: () => download(downloadButton) },
    t("batch.downloadAll"),
  );
  const cancelRow = confirmedAction({
    id: "cancel-batch",
    confirmId: "cancel-batch-confirm",
    label: t("batch.cancel"),
    question: t("batch.cancelConfirm"),
    run: cancel,
  });
  const grid = h("ul", { class: "batch-grid", id: "batch-grid", "aria-label": t("batch.items") });
  const items = new Map();

  const element = h(
    "div",
    null,
    h(
      "div",
      { class: "task-head" },
      h("h1", null, t("batch.title"), h("span", { class: "muted mono", id: "batch-id" }, `#${batch.id}`)),
      tag,
    ),
    facts,
    h(
      "div",
      { class: "progress-section" },
      overall.element,
      h("div", { class: "progress-text" }, progressValue, countsLine),
    ),
    summary,
    h("div", { class: "actions batch-actions" }, downloadButton, cancelRow),
    grid,
  );

  let tagShown = "";
  function update(next) {
    const tone = `${next.status}/${next.counts.failed}/${next.counts.success}`;
    if (tagShown !== tone) mount(tag, batchTag(next));
    tagShown = tone;
    const factsText = [
      typeLabel(next.type),
      t("task.created") + " " + formatDateTime(next.createdAt),
      next.completedAt ? t("task.completed") + " " + formatDateTime(next.completedAt) : "",
    ]
      .filter(Boolean)
      .join(" · ");
    if (facts.textContent !== factsText) facts.textContent = factsText;
    overall.set(next.progress);
    const percent = `${clampProgress(next.progress)}%`;
    if (progressValue.textContent !== percent) progressValue.textContent = percent;
    const counted = countsText(next);
    if (countsLine.textContent !== counted) countsLine.textContent = counted;
    const ended = next.counts.success + next.counts.failed;
    const said = t(next.status === "completed" ? "batch.summaryDone" : "batch.summary", {
      ended,
      total: next.total,
      success: next.counts.success,
      failed: next.counts.failed,
    });
    if (summary.textContent !== said) summary.textContent = said;
    downloadButton.disabled = next.counts.success === 0;
    downloadButton.title = next.counts.success === 0 ? t("batch.nothingYet") : "";
    cancelRow.hidden = next.status === "completed";
    for (const task of next.tasks || []) {
      if (!items.has(task.id)) {
        const item = batchItem(task);
        items.set(task.id, item);
        grid.appendChild(item.element);
      }
      items.get(task.id).update(task);
    }
  }

  return { element, update };
}

/** The picture an item shows: its first white-background result once it succeeded, else the input photo. */
function itemPicture(task) {
  const results = task.results || [];
  if (task.status === "success" && (task.resultUrls || []).length) {
    const white = results.findIndex((result) => /^white-bg\./.test(result.name || ""));
    return { url: task.resultUrls[white >= 0 ? white : 0], kind: "result" };
  }
  return { url: task.inputImageUrl, kind: "input" };
}

/** A link's file, without the query a signed link changes on every answer. */
function fileOf(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.origin + parsed.pathname;
  } catch (_) {
    return String(url);
  }
}

function batchItem(task) {
  const name = task.ref || `#${task.index + 1}`;
  const img = h("img", { class: "batch-img", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" });
  // Once the result shows, the input stays in a corner for comparison.
  const inset = h("img", { class: "batch-inset", alt: "", loading: "lazy", hidden: true });
  const tagBox = h("span", { class: "batch-tag" });
  const progress = progressBar(null, t("batch.itemProgress", { name }));
  progress.element.classList.add("mini");
  const error = h("p", { class: "batch-error small" });
  const element = h(
    "li",
    { class: "batch-item", dataset: { taskId: task.id, ref: task.ref || "" } },
    h(
      "a",
      { class: "batch-thumb checker", href: `#/task/${encodeURIComponent(task.id)}`, title: t("batch.openTask") },
      img,
      inset,
    ),
    h("div", { class: "batch-item-body" }, h("span", { class: "batch-ref", title: name }, name), tagBox),
    progress.element,
    error,
  );
  let shown = {};
  function update(next) {
    const cancelled = isCancelled(next);
    const state = cancelled ? "cancelled" : next.status;
    if (element.dataset.status !== state) {
      element.dataset.status = state;
      mount(tagBox, itemTag(next));
    }
    const picture = itemPicture(next);
    const file = fileOf(picture.url);
    if (shown.file !== file) {
      img.setAttribute("src", safeUrl(picture.url));
      img.setAttribute("alt", t(picture.kind === "result" ? "batch.altResult" : "batch.altInput", { name }));
      img.dataset.kind = picture.kind;
      inset.hidden = picture.kind !== "result";
      if (!inset.hidden) inset.setAttribute("src", safeUrl(next.inputImageUrl));
      shown = { file };
    }
    const active = ACTIVE.has(next.status);
    progress.element.hidden = !active;
    if (active) progress.set(next.progress);
    const message = next.status === "failed" && !cancelled ? next.errorMessage || "" : "";
    if (error.textContent !== message) error.textContent = message;
    error.hidden = !message;
  }
  return { element, update };
}

// ---------------------------------------------------------------- recent batches

export function renderBatches(root, _ctx) {
  const body = h("div", { id: "batch-list" });
  const pager = h("div", { class: "pager" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const poller = listPoller({
    load: (signal) => api.listBatches({ limit: PAGE_SIZE, offset: listState.offset }, signal),
    isActive: (data) => data.batches.some((batch) => batch.status !== "completed"),
    draw: (data) => draw(data),
    error,
  });

  function draw(data) {
    if (!data.batches.length) mount(body, h("p", { class: "empty muted", id: "batches-empty" }, t("batches.empty")));
    else mount(body, h("ul", { class: "task-items" }, data.batches.map(batchRow)));
    drawPager(pager, data, PAGE_SIZE, "batches.page", (offset) => {
      listState.offset = offset;
      poller.start();
    });
  }

  mount(
    root,
    h(
      "section",
      { class: "card batch-list task-page" },
      h(
        "div",
        { class: "list-head" },
        h("h2", null, t("batches.title")),
        h(
          "div",
          { class: "filters" },
          h("a", { class: "btn btn-primary", href: "#/", id: "new-batch" }, t("batches.new")),
          h("button", { type: "button", class: "btn", onclick: () => poller.start() }, t("list.refresh")),
        ),
      ),
      h("p", { class: "muted small" }, t("batches.help")),
      error,
      body,
      pager,
    ),
  );
  poller.start();
  return () => poller.stop();
}

function batchRow(batch) {
  const running = batch.status !== "completed";
  const bar = h("span", { class: "mini-progress-bar" });
  bar.style.width = `${clampProgress(batch.progress)}%`;
  return h(
    "li",
    null,
    h(
      "a",
      { class: "task-item", href: `#/batch/${encodeURIComponent(batch.id)}`, dataset: { batchId: batch.id } },
      h(
        "span",
        { class: "task-item-main" },
        h(
          "span",
          { class: "task-item-title" },
          t("batches.rowTitle", { type: typeLabel(batch.type), n: batch.total }),
          h("span", { class: "muted mono" }, ` #${batch.id}`),
        ),
        h("span", { class: "muted small" }, `${formatDateTime(batch.createdAt)} · ${countsText(batch)}`),
        running ? h("span", { class: "mini-progress", "aria-hidden": "true" }, bar) : null,
      ),
      batchTag(batch),
    ),
  );
}

// The home view: the new-task form and the task list side by side (stacked on a phone).
// Several photos picked or dropped at once make the form submit one batch (uploads.js).

import { api } from "./api.js";
import { ACTIVE, STATUSES, batchErrorItems, describeError, drawPager, listPoller, newIdempotencyKey, paramLabel, statusTag, typeLabel, valueLabel } from "./common.js";
import { h, mount, safeUrl, toast } from "./dom.js";
import { formatDateTime, label, t } from "./i18n.js";
import { OUTPUT_KEYS, outputParams, renderOutputOptions } from "./outputs.js";
import {
  MAX_BATCH_FILES,
  MAX_UPLOAD_MB,
  addFiles,
  addSource,
  batchDraft,
  clearBatch,
  counts,
  fileProblem,
  onBatchChange,
  refuseEntry,
  renderBatchFiles,
  uploaded,
} from "./uploads.js";

const PAGE_SIZE = 10;
const ELEMENT_IDS = { productDescription: "description" };
/** Element ids of params whose id is not their name (kept stable for links and tests). */
const TEXTAREA_FROM = 100;
/** A free-text param allowing more characters than this gets a text area. */

// Kept across re-renders (language switch, returning from a task page).
const draft = {
  inputUrl: "",
  previewSrc: "",
  fileName: "",
  type: "",
  params: {}, // per type: the values chosen so far, starting from the server's defaults
  idempotencyKey: newIdempotencyKey(),
};
const listState = { status: "", type: "", offset: 0 };

export function renderHome(root, ctx) {
  const list = renderTaskList(ctx);
  mount(root, h("div", { class: "home-grid" }, renderNewTask(ctx), list.element));
  list.start();
  return () => {
    list.stop();
    onBatchChange(null);
  };
}

// ---------------------------------------------------------------- new task

function renderNewTask(ctx) {
  const user = ctx.user;
  const formError = h("p", { class: "form-error", role: "alert", id: "new-error", hidden: true });
  const showError = (message) => {
    formError.textContent = message;
    formError.hidden = !message;
  };

  // Preview of the input, before anything is submitted.
  const previewImg = h("img", { id: "input-preview", class: "preview-img", alt: t("new.preview") });
  const previewEmpty = h("p", { class: "preview-empty muted" }, t("new.previewEmpty"));
  const previewBroken = h("p", { class: "form-error", hidden: true }, t("new.previewBroken"));
  const uploadStatus = h("p", { class: "upload-status muted", id: "upload-status" });
  const clearBtn = h("button", { type: "button", class: "btn btn-link", onclick: () => setSource("", "", "") }, t("new.clear"));
  previewImg.addEventListener("error", () => {
    if (!previewImg.getAttribute("src")) return;
    previewBroken.hidden = false;
  });
  previewImg.addEventListener("load", () => {
    previewBroken.hidden = true;
  });

  function showPreview() {
    const has = Boolean(draft.previewSrc);
    previewImg.hidden = !has;
    previewEmpty.hidden = has;
    clearBtn.hidden = !has;
    previewBroken.hidden = true;
    if (has) previewImg.setAttribute("src", safeUrl(draft.previewSrc));
    else previewImg.removeAttribute("src");
  }

  // One photo is previewed large; the photos of a batch are listed with their upload state.
  const single = h(
    "div",
    null,
    h("div", { class: "preview-head" }, h("span", { class: "label" }, t("new.preview")), clearBtn),
    h("div", { class: "preview-frame checker" }, previewImg, previewEmpty),
    previewBroken,
    uploadStatus,
  );
  const filesView = renderBatchFiles();
  function showMode() {
    const many = batchDraft.entries.length > 0;
    single.hidden = many;
    filesView.element.hidden = !many;
    if (!many) showPreview();
    else {
      // The placement preview (outputs.js) draws the first photo of the batch.
      const first = batchDraft.entries.find((entry) => entry.previewSrc);
      if (first && previewImg.getAttribute("src") !== first.previewSrc) previewImg.setAttribute("src", safeUrl(first.previewSrc));
    }
    refreshSubmit();
  }

  function setSource(inputUrl, previewSrc, fileName) {
    if (draft.previewSrc.startsWith("blob:") && draft.previewSrc !== previewSrc) {
      URL.revokeObjectURL(draft.previewSrc);
    }
    draft.inputUrl = inputUrl;
    draft.previewSrc = previewSrc;
    draft.fileName = fileName;
    uploadStatus.textContent = fileName && inputUrl ? t("new.uploaded", { name: fileName }) : "";
    showPreview();
  }

  let uploading = null; // the single photo being uploaded
  async function handleFile(file) {
    showError("");
    if (!file) return;
    const problem = fileProblem(file);
    if (problem) {
      showError(problem);
      return;
    }
    setSource("", URL.createObjectURL(file), file.name);
    uploadStatus.textContent = t("new.uploading", { name: file.name });
    uploading = file;
    refreshSubmit();
    try {
      const data = await api.upload(file);
      if (uploading === file && draft.fileName === file.name) setSource(data.url, draft.previewSrc, file.name);
    } catch (err) {
      if (uploading === file) {
        setSource("", "", "");
        showError(describeError(err));
      }
    } finally {
      if (uploading === file) uploading = null;
      refreshSubmit();
    }
  }

  /** One photo is a task; several at once (or more added to them) are one batch. */
  function handleFiles(fileList) {
    const files = [...(fileList || [])];
    if (!files.length) return;
    if (files.length === 1 && !batchDraft.entries.length) {
      handleFile(files[0]);
      return;
    }
    showError("");
    // The photo already chosen joins the batch (its preview now belongs to the batch's list).
    if (!batchDraft.entries.length && draft.inputUrl) {
      addSource({ name: draft.fileName || urlName(draft.inputUrl), url: draft.inputUrl, previewSrc: draft.previewSrc });
      draft.previewSrc = "";
      setSource("", "", "");
    } else if (uploading) {
      files.unshift(uploading); // its single upload is left to finish unused
      uploading = null;
      setSource("", "", "");
    }
    const left = addFiles(files);
    if (left) showError(t("batch.tooMany", { max: MAX_BATCH_FILES, n: left }));
  }

  const fileInput = h("input", {
    type: "file",
    id: "file-input",
    accept: "image/jpeg,image/png,image/webp",
    multiple: true,
    class: "visually-hidden",
    onchange: () => {
      handleFiles(fileInput.files);
      fileInput.value = "";
    },
  });
  const dropZone = h(
    "div",
    {
      class: "drop-zone",
      id: "drop-zone",
      tabindex: "0",
      role: "button",
      "aria-label": `${t("new.drop")} ${t("new.pick")}`,
      ondragover: (event) => {
        event.preventDefault();
        dropZone.classList.add("dragging");
      },
      ondragleave: () => dropZone.classList.remove("dragging"),
      ondrop: (event) => {
        event.preventDefault();
        dropZone.classList.remove("dragging");
        handleFiles(event.dataTransfer && event.dataTransfer.files);
      },
      onkeydown: (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          fileInput.click();
        }
      },
    },
    h("span", { class: "drop-icon", "aria-hidden": "true" }, "⇪"),
    h("span", null, t("new.drop"), " ", h("label", { for: "file-input", class: "link" }, t("new.pick"))),
    h("span", { class: "hint" }, t("new.dropHint", { size: MAX_UPLOAD_MB })),
    h("span", { class: "hint" }, t("batch.dropHint", { max: MAX_BATCH_FILES })),
    fileInput,
  );

  const urlInput = h("input", {
    type: "url",
    id: "url-input",
    inputmode: "url",
    placeholder: t("new.urlPlaceholder"),
    maxlength: 2048,
    value: draft.fileName ? "" : draft.inputUrl,
  });
  const useUrl = () => {
    showError("");
    const text = urlInput.value.trim();
    if (!text) return;
    let url;
    try {
      url = new URL(text);
    } catch (_) {
      url = null;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      showError(t("new.badUrl"));
      return;
    }
    if (batchDraft.entries.length) {
      if (!addSource({ name: urlName(url.href), url: url.href, previewSrc: url.href })) {
        showError(t("batch.tooMany", { max: MAX_BATCH_FILES, n: 1 }));
      }
      urlInput.value = "";
    } else setSource(url.href, url.href, "");
  };
  urlInput.addEventListener("change", useUrl);
  urlInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      useUrl();
    }
  });

  // Task type and its parameters, as the server lists them (GET /api/task/types).
  const types = ctx.taskTypes;
  const offered = types.filter((type) => type.available);
  if (!offered.some((type) => type.name === draft.type)) draft.type = offered.length ? offered[0].name : "";
  for (const type of types) {
    const values = (draft.params[type.name] ||= {});
    for (const param of formParams(type)) {
      if (!(param.name in values)) values[param.name] = param.default ?? (param.type === "boolean" ? false : "");
    }
  }

  const typeChoice = h(
    "div",
    { class: "type-choice", role: "radiogroup", "aria-label": t("new.type") },
    types.map((type) =>
      h(
        "label",
        {
          class: `type-card${draft.type === type.name ? " selected" : ""}${type.available ? "" : " unavailable"}`,
          title: type.available ? null : type.unavailableReason,
        },
        h("input", {
          type: "radio",
          name: "task-type",
          value: type.name,
          checked: draft.type === type.name,
          disabled: !type.available,
          onchange: () => {
            draft.type = type.name;
            for (const card of typeChoice.querySelectorAll(".type-card")) {
              card.classList.toggle("selected", card.querySelector("input").checked);
            }
            showParams();
          },
        }),
        h("strong", null, typeLabel(type.name)),
        h(
          "span",
          { class: "muted" },
          type.available ? label(`type.${type.name}.desc`, "") : t("new.unavailable", { reason: type.unavailableReason }),
        ),
      ),
    ),
  );

  const outputOptions = (type) => (hasOutputs(type) ? renderOutputOptions(previewImg).element : null);
  const paramSections = types.map((type) => renderParams(type, draft.params[type.name], outputOptions(type)));
  const showParams = () => {
    types.forEach((type, index) => (paramSections[index].hidden = draft.type !== type.name));
  };
  showParams();

  // Submit, or a clear explanation of why the account cannot submit yet.
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block", id: "submit-task" }, t("new.submit"));
  const cost = h("p", { class: "warn small", id: "batch-cost", hidden: true });
  let gate = null;
  if (!user.membershipActive) gate = ["new.notMemberTitle", "new.notMemberBody"];
  else if (user.quota <= 0) gate = ["new.noQuotaTitle", "new.noQuotaBody"];
  const footer = gate
    ? h(
        "div",
        { class: "gate", id: "gate", role: "note" },
        h("strong", null, t(gate[0])),
        h("p", null, t(gate[1])),
        h("button", { type: "button", class: "btn", onclick: () => ctx.refreshAccount(true) }, t("new.refreshAccount")),
      )
    : [cost, submit];

  let submitting = false;
  /** The button says what a click sends: one task, or a batch of the uploaded photos once none is still uploading. */
  function refreshSubmit() {
    if (submitting) return;
    const c = counts();
    if (!c.total) {
      submit.disabled = Boolean(uploading);
      submit.textContent = t("new.submit");
      cost.hidden = true;
      return;
    }
    submit.disabled = c.waiting > 0 || c.uploaded === 0;
    submit.textContent = c.waiting ? t("batch.waitUploads", { n: c.waiting }) : t("batch.submit", { n: c.uploaded });
    cost.hidden = c.uploaded <= user.quota;
    cost.textContent = t("batch.notEnough", { n: c.uploaded, quota: user.quota });
  }

  /** The params the form builds for `type`, or null after saying what is wrong. */
  function paramsFor(type) {
    // A switch left off is not sent: the server's default (off) applies.
    const params = {
      ...Object.fromEntries(
        Object.entries(draft.params[type.name]).filter(([name, value]) => !(value === false && isSwitch(type, name))),
      ),
      ...(hasOutputs(type) ? outputParams() : {}),
    };
    const tooLong = formParams(type).find((p) => p.type === "string" && p.max !== null && String(params[p.name]).length > p.max);
    if (tooLong) {
      showError(t("new.tooLong", { field: paramLabel(tooLong.name), max: tooLong.max }));
      return null;
    }
    return params;
  }

  async function submitTask(type, params) {
    const data = await api.createTask({ type: type.name, inputImageUrl: draft.inputUrl, params }, draft.idempotencyKey);
    draft.idempotencyKey = newIdempotencyKey();
    toast(t("new.created"), "success");
    ctx.refreshAccount();
    ctx.navigate(`#/task/${encodeURIComponent(data.taskId)}`);
  }

  async function submitBatch(type, params) {
    const sent = uploaded();
    let data;
    try {
      data = await api.createBatch(
        { type: type.name, params, items: sent.map((entry) => ({ inputImageUrl: entry.url, ref: entry.ref })) },
        batchDraft.idempotencyKey,
      );
    } catch (err) {
      // Photos the server refused are marked in the list (an expired upload link: upload again).
      const refused = batchErrorItems(err);
      for (const [index, message] of refused) if (sent[index]) refuseEntry(sent[index], message);
      if (refused.size) throw Object.assign(err, { refusedItems: refused.size });
      throw err;
    }
    clearBatch();
    toast(t("batch.created", { n: data.total }), "success");
    ctx.refreshAccount();
    ctx.navigate(`#/batch/${encodeURIComponent(data.id)}`);
  }

  const form = h(
    "form",
    {
      class: "card new-task",
      id: "new-task",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        if (gate || uploading || submitting) return;
        showError("");
        const many = batchDraft.entries.length > 0;
        if (!many && !draft.inputUrl) {
          showError(t("new.needImage"));
          return;
        }
        const type = types.find((candidate) => candidate.name === draft.type);
        if (!type) return;
        const params = paramsFor(type);
        if (!params) return;
        submitting = true;
        submit.disabled = true;
        submit.textContent = t("new.submitting");
        try {
          await (many ? submitBatch(type, params) : submitTask(type, params));
        } catch (err) {
          // A batch beyond the balance keeps its list: the message says how many units it needs.
          if (err.code === 1002 || (err.code === 1003 && !many)) ctx.refreshAccount(true);
          else if (err.code === 1003) ctx.refreshAccount();
          const message = describeError(err);
          showError(err.refusedItems ? `${t("batch.refused", { n: err.refusedItems })} ${message}` : message);
        } finally {
          submitting = false;
          refreshSubmit();
        }
      },
    },
    h("h2", null, t("new.title")),
    h("fieldset", null, h("legend", null, t("new.source")), dropZone, h("label", { for: "url-input", class: "or" }, t("new.or")),
      h("div", { class: "url-row" }, urlInput, h("button", { type: "button", class: "btn", onclick: useUrl }, t("new.useUrl")))),
    h("div", { class: "preview-box" }, single, filesView.element),
    h("fieldset", null, h("legend", null, t("new.type")), typeChoice, ...paramSections),
    formError,
    footer,
  );
  showMode();
  if (draft.fileName && draft.inputUrl) uploadStatus.textContent = t("new.uploaded", { name: draft.fileName });
  onBatchChange((entry) => {
    filesView.update(entry);
    if (entry) refreshSubmit();
    else showMode();
  });
  return form;
}

/** The last segment of a URL's path, to name a photo given by its link. */
function urlName(url) {
  try {
    return decodeURIComponent(new URL(url).pathname.split("/").pop()) || "photo";
  } catch (_) {
    return "photo";
  }
}

/** A type's params drawn by the generic form: the output options have their own (outputs.js). */
function formParams(type) {
  return type.params.filter((param) => !OUTPUT_KEYS.includes(param.name));
}

function hasOutputs(type) {
  return type.params.some((param) => param.name === "preset");
}

/** One type's params: a select per param with allowed values (side by side), then free-text fields. */
function renderParams(type, values, extra) {
  const id = (param) => ELEMENT_IDS[param.name] || param.name;
  const choice = (param) =>
    h(
      "div",
      null,
      h("label", { for: id(param) }, label(`new.${param.name}`, param.name)),
      h(
        "select",
        { id: id(param), name: param.name, onchange: (event) => (values[param.name] = event.target.value) },
        param.allowed.map((value) =>
          h("option", { value, selected: values[param.name] === value }, valueLabel(param.name, value)),
        ),
      ),
    );
  const text = (param) => {
    const numeric = param.type === "integer" || param.type === "number";
    const area = !numeric && param.max !== null && param.max > TEXTAREA_FROM;
    const counter = h("span", { class: "counter muted", id: `${id(param)}-count` });
    const update = () => {
      if (!numeric && param.max !== null) counter.textContent = t("new.count", { n: field.value.length, max: param.max });
    };
    const field = h(area ? "textarea" : "input", {
      id: id(param),
      name: param.name,
      type: area ? null : numeric ? "number" : "text",
      rows: area ? 3 : null,
      min: numeric ? param.min : null,
      max: numeric ? param.max : null,
      maxlength: numeric ? null : param.max,
      placeholder: label(`new.${param.name}.placeholder`, ""),
      value: values[param.name],
      oninput: () => {
        values[param.name] = numeric && field.value !== "" ? Number(field.value) : field.value;
        update();
      },
    });
    update();
    return [h("label", { for: id(param) }, label(`new.${param.name}`, param.name), " ", counter), field];
  };
  // A boolean is a switch; one whose option this server lacks (GET /api/task/types `options`) is not offered.
  const check = (param) =>
    h(
      "label",
      { class: "check", for: id(param) },
      h("input", {
        type: "checkbox",
        id: id(param),
        name: param.name,
        checked: values[param.name] === true,
        onchange: (event) => (values[param.name] = event.target.checked),
      }),
      " ",
      label(`new.${param.name}`, param.name),
    );
  const choices = formParams(type).filter((param) => param.allowed);
  const texts = formParams(type).filter((param) => !param.allowed && param.type !== "boolean");
  const checks = formParams(type).filter((param) => isSwitch(type, param.name) && optionOffered(type, param.name));
  return h(
    "div",
    { class: "params", id: `params-${type.name}` },
    choices.length > 1 ? h("div", { class: "row2" }, choices.map(choice)) : choices.map(choice),
    checks.map(check),
    texts.map(text),
    extra,
  );
}

function isSwitch(type, name) {
  return type.params.some((param) => param.name === name && param.type === "boolean");
}

function optionOffered(type, name) {
  return (type.options || []).every((option) => option.param !== name || option.available);
}

// ---------------------------------------------------------------- task list

function renderTaskList(ctx) {
  const body = h("div", { class: "task-list-body", id: "task-list" });
  const pager = h("div", { class: "pager" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });

  const filter = (id, key, values, allKey, label) =>
    h(
      "select",
      {
        id,
        "aria-label": t(allKey),
        onchange: (event) => {
          listState[key] = event.target.value;
          listState.offset = 0;
          poller.start();
        },
      },
      h("option", { value: "" }, t(allKey)),
      values.map((value) => h("option", { value, selected: listState[key] === value }, label(value))),
    );

  const poller = listPoller({
    load: (signal) =>
      api.listTasks(
        { limit: PAGE_SIZE, offset: listState.offset, status: listState.status, type: listState.type },
        signal,
      ),
    isActive: (data) => data.tasks.some((task) => ACTIVE.has(task.status)),
    draw: (data) => drawList(data),
    error,
  });

  function drawList(data) {
    if (!data.tasks.length) {
      mount(
        body,
        h("p", { class: "empty muted" }, t(listState.status || listState.type ? "list.emptyFiltered" : "list.empty")),
      );
    } else {
      mount(body, h("ul", { class: "task-items" }, data.tasks.map(taskItem)));
    }
    drawPager(pager, data, PAGE_SIZE, "list.page", (offset) => {
      listState.offset = offset;
      poller.start();
    });
  }

  const element = h(
    "section",
    { class: "card task-list" },
    h(
      "div",
      { class: "list-head" },
      h("h2", null, t("list.title")),
      h(
        "div",
        { class: "filters" },
        filter("filter-status", "status", STATUSES, "list.allStatus", (s) => t(`status.${s}`)),
        filter("filter-type", "type", ctx.taskTypes.map((type) => type.name), "list.allTypes", typeLabel),
        h("button", { type: "button", class: "btn", onclick: () => poller.start() }, t("list.refresh")),
      ),
    ),
    error,
    body,
    pager,
  );
  return { element, start: () => poller.start(), stop: () => poller.stop() };
}

function taskItem(task) {
  const thumb = (task.resultUrls && task.resultUrls[0]) || task.inputImageUrl;
  return h(
    "li",
    null,
    h(
      "a",
      { class: "task-item", href: `#/task/${encodeURIComponent(task.id)}`, dataset: { taskId: task.id } },
      h("span", { class: "thumb checker" }, h("img", { src: thumb, alt: "", loading: "lazy", referrerpolicy: "no-referrer" })),
      h(
        "span",
        { class: "task-item-main" },
        h("span", { class: "task-item-title" }, typeLabel(task.type), h("span", { class: "muted mono" }, ` #${task.id}`)),
        h("span", { class: "muted small" }, formatDateTime(task.createdAt)),
        task.status === "processing" && typeof task.progress === "number"
          ? miniProgress(task.progress)
          : null,
      ),
      statusTag(task.status),
    ),
  );
}

function miniProgress(progress) {
  const bar = h("span", { class: "mini-progress-bar" });
  bar.style.width = `${Math.min(100, Math.max(0, Number(progress) || 0))}%`;
  return h("span", { class: "mini-progress", "aria-hidden": "true" }, bar);
}

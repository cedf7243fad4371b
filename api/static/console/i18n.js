// UI strings: Chinese (as in the seed) and English. The choice is remembered in localStorage.

const STRINGS = {
  zh: {
    "app.title": "商品图片处理控制台",
    "app.brand": "商品图片处理",
    "lang.switch": "English",
    "lang.switchTitle": "Switch to English",

    "auth.signIn": "登录",
    "auth.register": "注册",
    "auth.signOut": "退出登录",
    "auth.email": "邮箱",
    "auth.password": "密码",
    "auth.passwordHint": "8-128 位，至少包含一个字母和一个数字",
    "auth.submitSignIn": "登录",
    "auth.submitRegister": "注册并登录",
    "auth.welcome": "上传一张商品照片，自动生成抠图、白底图、增强图，或 12 张 AI 模特图。",
    "auth.expired": "登录已过期，请重新登录。",
    "auth.working": "请稍候…",

    "account.member": "会员",
    "account.memberUntil": "会员（至 {date}）",
    "account.notMember": "非会员",
    "account.quota": "剩余额度 {n}",
    "account.quotaShort": "额度 {n}",

    "nav.home": "任务",
    "nav.new": "新建任务",

    "new.title": "新建任务",
    "new.source": "商品图片",
    "new.drop": "拖拽图片到这里，或",
    "new.pick": "选择图片",
    "new.dropHint": "支持 JPG、PNG、WebP，最大 {size} MB",
    "new.or": "或粘贴图片链接",
    "new.urlPlaceholder": "https://example.com/product.jpg",
    "new.useUrl": "使用链接",
    "new.uploading": "正在上传 {name}…",
    "new.uploaded": "已上传：{name}",
    "new.preview": "输入预览",
    "new.previewEmpty": "选择或粘贴图片后在这里预览",
    "new.previewBroken": "无法加载这张图片，请检查链接是否可以公开访问。",
    "new.clear": "更换图片",
    "new.type": "处理类型",
    "type.basic_clean": "基础修图",
    "type.basic_clean.desc": "抠图、白底图、增强图",
    "type.model_pose12": "AI 模特图",
    "type.model_pose12.desc": "12 张模特展示图",
    "new.template": "输出内容",
    "template.all": "全部（抠图 + 白底 + 增强）",
    "template.matting": "仅抠图（透明背景）",
    "template.white_bg": "仅白底图",
    "template.enhanced": "仅增强图",
    "new.scene": "场景",
    "scene.street": "街拍",
    "scene.studio": "影棚",
    "scene.indoor": "室内",
    "new.category": "品类",
    "category.shoes": "鞋子",
    "category.dress": "连衣裙",
    "category.hoodie": "卫衣",
    "new.description": "商品描述（可选）",
    "new.descriptionPlaceholder": "例如：白色纯棉连帽卫衣，宽松版型",
    "new.count": "{n}/{max}",
    "new.submit": "提交任务（消耗 1 点额度）",
    "new.submitting": "正在提交…",
    "new.needImage": "请先选择或粘贴一张商品图片。",
    "new.badUrl": "请输入以 http:// 或 https:// 开头的图片链接。",
    "new.badFile": "请选择图片文件（JPG、PNG 或 WebP）。",
    "new.tooBig": "图片太大：{size} MB，最大 {max} MB。",
    "new.tooLong": "商品描述最多 {max} 个字。",
    "new.created": "任务已创建",
    "new.notMemberTitle": "您还不是会员",
    "new.notMemberBody": "创建任务需要会员资格。请联系客服或管理员开通会员后刷新本页。",
    "new.noQuotaTitle": "额度已用完",
    "new.noQuotaBody": "每个任务消耗 1 点额度，处理失败的任务会自动退还。请续费或联系管理员增加额度后刷新本页。",
    "new.refreshAccount": "刷新账户状态",

    "list.title": "我的任务",
    "list.allStatus": "全部状态",
    "list.allTypes": "全部类型",
    "list.refresh": "刷新",
    "list.empty": "还没有任务。",
    "list.emptyFiltered": "没有符合条件的任务。",
    "list.prev": "上一页",
    "list.next": "下一页",
    "list.page": "第 {page} / {pages} 页，共 {total} 个任务",
    "list.open": "查看",

    "status.pending": "等待处理",
    "status.processing": "处理中",
    "status.success": "处理成功",
    "status.failed": "处理失败",

    "task.back": "← 返回任务列表",
    "task.title": "任务详情",
    "task.id": "任务编号",
    "task.type": "类型",
    "task.created": "创建时间",
    "task.completed": "完成时间",
    "task.params": "参数",
    "task.description": "商品描述",
    "task.input": "输入图片",
    "task.progress": "进度",
    "task.eta": "预计还需 {time}",
    "task.etaUnknown": "正在估算剩余时间…",
    "task.queue": "排队中，前面还有 {n} 个任务",
    "task.queueUnknown": "排队中，等待处理…",
    "task.workersStarting": "排队中：处理程序正在启动，马上开始…",
    "task.elapsed": "已用时 {time}",
    "task.took": "用时 {time}",
    "task.cancel": "取消任务",
    "task.cancelConfirm": "确定取消这个任务吗？额度会退还。",
    "task.cancelled": "任务已取消",
    "task.retry": "重试",
    "task.retrying": "正在重新提交…",
    "task.retried": "已重新提交为新任务",
    "task.failedTitle": "处理失败",
    "task.failedReason": "失败原因：",
    "task.failedRefund": "本次消耗的 1 点额度已退还，可以直接重试。",
    "task.hintTimeout": "任务超过 10 分钟未完成，可能是排队的任务太多，请稍后重试。",
    "task.hintFetch": "无法下载输入图片，请确认链接可以公开访问并且是图片。",
    "task.hintImage": "输入文件不是有效的图片，或图片太小、太大。请换一张清晰的商品照片。",
    "task.hintCancelled": "任务已被取消。",
    "task.results": "处理结果",
    "task.noResults": "没有生成结果图片。",
    "task.downloadAll": "打包下载全部（ZIP）",
    "task.downloading": "正在打包下载…",
    "task.download": "下载",
    "task.openFull": "查看大图",
    "task.compare": "前后对比",
    "task.compareWith": "对比结果",
    "task.before": "原图",
    "task.after": "处理后",
    "task.compareSlider": "拖动滑块对比原图与结果",
    "task.pollStopped": "已自动查询 {n} 次，停止自动刷新。",
    "task.manualRefresh": "手动刷新",
    "task.networkRetry": "网络连接异常，{s} 秒后重试…",
    "task.notFound": "任务不存在，或不属于当前账户。",
    "result.matting": "抠图（透明背景）",
    "result.white-bg": "白底图",
    "result.enhanced": "增强图",
    "result.pose": "模特图 {n}",
    "result.other": "结果 {n}",
    "lightbox.close": "关闭",
    "lightbox.prev": "上一张",
    "lightbox.next": "下一张",

    "time.seconds": "{n} 秒",
    "time.minutes": "{m} 分 {s} 秒",

    "error.network": "网络连接失败，请检查网络后重试。",
    "error.1002": "您还不是会员，无法创建任务。请开通会员后再试。",
    "error.1003": "额度已用完。请续费或联系管理员增加额度。",
    "error.1004": "账户不存在或已被停用，请联系客服。",
    "error.4001": "参数有误：{message}",
    "error.4003": "没有权限执行这个操作。",
    "error.4004": "找不到这个任务。",
    "error.4009": "操作与任务当前状态冲突：{message}",
    "error.413": "文件太大，请换一张较小的图片。",
    "error.429": "操作太频繁，请稍后再试。",
    "error.503": "服务暂时不可用，请稍后再试。（{message}）",
    "error.generic": "出错了：{message}",
    "error.login": "邮箱或密码错误。",
  },
  en: {
    "app.title": "Product image console",
    "app.brand": "Product images",
    "lang.switch": "中文",
    "lang.switchTitle": "切换到中文",

    "auth.signIn": "Sign in",
    "auth.register": "Register",
    "auth.signOut": "Sign out",
    "auth.email": "Email",
    "auth.password": "Password",
    "auth.passwordHint": "8-128 characters with at least one letter and one digit",
    "auth.submitSignIn": "Sign in",
    "auth.submitRegister": "Register and sign in",
    "auth.welcome": "Upload a product photo and get a cut-out, a white background and an enhanced version, or 12 AI model photos.",
    "auth.expired": "Your session expired. Please sign in again.",
    "auth.working": "Please wait…",

    "account.member": "Member",
    "account.memberUntil": "Member (until {date})",
    "account.notMember": "Not a member",
    "account.quota": "Quota left: {n}",
    "account.quotaShort": "Quota {n}",

    "nav.home": "Tasks",
    "nav.new": "New task",

    "new.title": "New task",
    "new.source": "Product photo",
    "new.drop": "Drop a photo here, or",
    "new.pick": "choose a file",
    "new.dropHint": "JPG, PNG or WebP, up to {size} MB",
    "new.or": "or paste an image URL",
    "new.urlPlaceholder": "https://example.com/product.jpg",
    "new.useUrl": "Use URL",
    "new.uploading": "Uploading {name}…",
    "new.uploaded": "Uploaded: {name}",
    "new.preview": "Input preview",
    "new.previewEmpty": "Choose or paste a photo to preview it here",
    "new.previewBroken": "This image cannot be loaded. Check that the URL is publicly reachable.",
    "new.clear": "Change photo",
    "new.type": "Task type",
    "type.basic_clean": "Basic clean-up",
    "type.basic_clean.desc": "Cut-out, white background, enhanced",
    "type.model_pose12": "AI model photos",
    "type.model_pose12.desc": "12 photos of a model",
    "new.template": "Output",
    "template.all": "All (cut-out + white background + enhanced)",
    "template.matting": "Cut-out only (transparent)",
    "template.white_bg": "White background only",
    "template.enhanced": "Enhanced only",
    "new.scene": "Scene",
    "scene.street": "Street",
    "scene.studio": "Studio",
    "scene.indoor": "Indoor",
    "new.category": "Category",
    "category.shoes": "Shoes",
    "category.dress": "Dress",
    "category.hoodie": "Hoodie",
    "new.description": "Product description (optional)",
    "new.descriptionPlaceholder": "e.g. white cotton hoodie, loose fit",
    "new.count": "{n}/{max}",
    "new.submit": "Submit (uses 1 quota)",
    "new.submitting": "Submitting…",
    "new.needImage": "Choose or paste a product photo first.",
    "new.badUrl": "Enter an image URL starting with http:// or https://.",
    "new.badFile": "Choose an image file (JPG, PNG or WebP).",
    "new.tooBig": "The image is too large: {size} MB, the limit is {max} MB.",
    "new.tooLong": "The description can be at most {max} characters.",
    "new.created": "Task created",
    "new.notMemberTitle": "You are not a member yet",
    "new.notMemberBody": "Creating tasks needs a membership. Contact support or an administrator to get one, then refresh this page.",
    "new.noQuotaTitle": "No quota left",
    "new.noQuotaBody": "Each task uses 1 quota; failed tasks give it back. Renew or ask an administrator for more quota, then refresh this page.",
    "new.refreshAccount": "Refresh account",

    "list.title": "My tasks",
    "list.allStatus": "All statuses",
    "list.allTypes": "All types",
    "list.refresh": "Refresh",
    "list.empty": "No tasks yet.",
    "list.emptyFiltered": "No tasks match these filters.",
    "list.prev": "Previous",
    "list.next": "Next",
    "list.page": "Page {page} of {pages}, {total} tasks",
    "list.open": "Open",

    "status.pending": "Pending",
    "status.processing": "Processing",
    "status.success": "Succeeded",
    "status.failed": "Failed",

    "task.back": "← Back to tasks",
    "task.title": "Task",
    "task.id": "Task id",
    "task.type": "Type",
    "task.created": "Created",
    "task.completed": "Finished",
    "task.params": "Parameters",
    "task.description": "Product description",
    "task.input": "Input photo",
    "task.progress": "Progress",
    "task.eta": "About {time} left",
    "task.etaUnknown": "Estimating time left…",
    "task.queue": "Queued, {n} task(s) ahead",
    "task.queueUnknown": "Queued, waiting for a worker…",
    "task.workersStarting": "Queued: the workers are starting, this takes a few seconds…",
    "task.elapsed": "Running for {time}",
    "task.took": "Took {time}",
    "task.cancel": "Cancel task",
    "task.cancelConfirm": "Cancel this task? Its quota is given back.",
    "task.cancelled": "Task cancelled",
    "task.retry": "Retry",
    "task.retrying": "Resubmitting…",
    "task.retried": "Resubmitted as a new task",
    "task.failedTitle": "Processing failed",
    "task.failedReason": "Reason: ",
    "task.failedRefund": "The quota this task used has been given back; you can retry right away.",
    "task.hintTimeout": "The task did not finish within 10 minutes, probably because the queue was long. Please retry later.",
    "task.hintFetch": "The input image could not be downloaded. Check that the URL is public and points to an image.",
    "task.hintImage": "The input is not a usable image (or it is too small or too large). Try a clear product photo.",
    "task.hintCancelled": "The task was cancelled.",
    "task.results": "Results",
    "task.noResults": "No result images were produced.",
    "task.downloadAll": "Download all (ZIP)",
    "task.downloading": "Preparing the ZIP…",
    "task.download": "Download",
    "task.openFull": "View full size",
    "task.compare": "Before / after",
    "task.compareWith": "Compare with",
    "task.before": "Before",
    "task.after": "After",
    "task.compareSlider": "Drag the slider to compare the input and the result",
    "task.pollStopped": "Stopped refreshing automatically after {n} checks.",
    "task.manualRefresh": "Refresh now",
    "task.networkRetry": "Network problem, retrying in {s} s…",
    "task.notFound": "This task does not exist or belongs to another account.",
    "result.matting": "Cut-out (transparent)",
    "result.white-bg": "White background",
    "result.enhanced": "Enhanced",
    "result.pose": "Model photo {n}",
    "result.other": "Result {n}",
    "lightbox.close": "Close",
    "lightbox.prev": "Previous",
    "lightbox.next": "Next",

    "time.seconds": "{n} s",
    "time.minutes": "{m} min {s} s",

    "error.network": "Network error. Check your connection and try again.",
    "error.1002": "You are not a member, so you cannot create tasks yet.",
    "error.1003": "Your quota is used up. Renew or ask an administrator for more.",
    "error.1004": "This account does not exist or is disabled. Contact support.",
    "error.4001": "Invalid input: {message}",
    "error.4003": "You are not allowed to do this.",
    "error.4004": "Task not found.",
    "error.4009": "Not possible in the task's current state: {message}",
    "error.413": "The file is too large; choose a smaller image.",
    "error.429": "Too many requests; try again in a moment.",
    "error.503": "The service is temporarily unavailable; try again shortly. ({message})",
    "error.generic": "Something went wrong: {message}",
    "error.login": "Wrong email or password.",
  },
};

const STORAGE_KEY = "shopimage.lang";

let current = (() => {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && STRINGS[saved]) return saved;
  } catch (_) {
    /* storage blocked: fall back to Chinese */
  }
  return "zh";
})();

export function lang() {
  return current;
}

export function setLang(next) {
  if (!STRINGS[next]) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch (_) {
    /* not remembered, still switched */
  }
  applyDocumentLang();
}

export function applyDocumentLang() {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
}

/** The string for `key` with `{name}` placeholders filled from `vars` (plain text, never HTML). */
export function t(key, vars) {
  const table = STRINGS[current];
  let text = key in table ? table[key] : STRINGS.zh[key] ?? key;
  if (vars) {
    text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  }
  return text;
}

export function formatDateTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(current === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

export function formatDuration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return t("time.seconds", { n: total });
  return t("time.minutes", { m: Math.floor(total / 60), s: total % 60 });
}

// The API client: JSON envelope, Bearer tokens kept in localStorage, the access token
// refreshed shortly before it expires, and one refresh-and-retry on a 401.

const STORAGE_KEY = "shopimage.auth";
const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  get isNetwork() {
    return this.status === 0;
  }

  get isAuth() {
    return this.status === 401;
  }
}

let tokens = loadTokens();
let refreshTimer = null;
let refreshing = null;
const signedOutListeners = [];

function loadTokens() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    if (saved && saved.accessToken && saved.refreshToken) return saved;
  } catch (_) {
    /* corrupt or blocked storage: signed out */
  }
  return null;
}

function saveTokens() {
  try {
    if (tokens) localStorage.setItem(STORAGE_KEY, JSON.stringify(tokens));
    else localStorage.removeItem(STORAGE_KEY);
  } catch (_) {
    /* tokens live in memory only */
  }
}

/** Seconds-since-epoch expiry of a JWT, read from its payload (not verified: the server does that). */
function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const payload = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof payload.exp === "number" ? payload.exp * 1000 : null;
  } catch (_) {
    return null;
  }
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  if (!tokens) return;
  const expires = tokenExpiry(tokens.accessToken);
  if (!expires) return;
  const issued = tokens.issuedAt || Date.now();
  const lifetime = Math.max(0, expires - issued);
  const margin = Math.min(REFRESH_MARGIN_MS, lifetime / 5);
  // Jitter, so tabs sharing one session do not all wake at the same moment.
  const jitter = Math.random() * Math.min(10_000, margin / 2);
  const delay = Math.max(1_000, expires - margin - jitter - Date.now());
  refreshTimer = setTimeout(() => refreshAccessToken().catch(() => {}), delay);
}

export function isSignedIn() {
  return tokens !== null;
}

export function setTokens(accessToken, refreshToken) {
  tokens = { accessToken, refreshToken, issuedAt: Date.now() };
  saveTokens();
  scheduleRefresh();
}

export function signOut(reason) {
  tokens = null;
  saveTokens();
  clearTimeout(refreshTimer);
  for (const listener of signedOutListeners) listener(reason);
}

export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

/**
 * Exchange the refresh token for a new pair. Refresh tokens are single-use (a token presented
 * twice ends the session), so concurrent callers share one request, and tabs take turns under a
 * Web Lock, adopting the pair another tab just stored instead of spending the old token again.
 */
export function refreshAccessToken() {
  if (!tokens) return Promise.reject(new ApiError(401, 4003, "signed out"));
  if (!refreshing) {
    const spent = tokens.refreshToken;
    const exchange = async () => {
      const stored = loadTokens();
      if (stored && stored.refreshToken !== spent) {
        tokens = stored;
        scheduleRefresh();
        return stored;
      }
      const data = await send("POST", "/api/auth/refresh", { token: spent });
      if (tokens && tokens.refreshToken === spent) setTokens(data.accessToken, data.refreshToken || spent);
      return data;
    };
    const locks = typeof navigator !== "undefined" && navigator.locks;
    refreshing = (locks ? locks.request("shopimage.refresh", exchange) : exchange()).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** End this session on the server (best effort: the console signs out either way). */
export async function logOut() {
  const current = tokens;
  signOut("user");
  if (!current) return;
  try {
    await send("POST", "/api/auth/logout", { token: current.refreshToken });
  } catch (_) {
    /* offline or already ended: the tokens are gone from this browser anyway */
  }
}

/**
 * fetch() for a request whose upload progress is wanted: fetch cannot report how much of a
 * request body has been sent, XMLHttpRequest can. Answers a Response like fetch does.
 */
function fetchWithUploadProgress(path, { method, headers, body, signal }, onUploadProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.responseType = "blob";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onUploadProgress(event.loaded, event.total);
    };
    xhr.onload = () => {
      const responseHeaders = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const at = line.indexOf(":");
        if (at > 0) responseHeaders.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
      }
      const empty = [204, 205, 304].includes(xhr.status);
      resolve(new Response(empty ? null : xhr.response, { status: xhr.status, statusText: xhr.statusText, headers: responseHeaders }));
    };
    xhr.onerror = () => reject(new TypeError("network error"));
    xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException("aborted", "AbortError"));
        return;
      }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(body);
  });
}

async function send(method, path, { json, form, token, signal, raw, headers: extra, onUploadProgress } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    const init = { method, headers, body, signal, cache: "no-store" };
    response = await (onUploadProgress ? fetchWithUploadProgress(path, init, onUploadProgress) : fetch(path, init));
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", String(err && err.message));
  }
  if (raw && response.ok) return response;
  let payload = null;
  try {
    payload = await response.json();
  } catch (_) {
    payload = null;
  }
  if (!response.ok || !payload || payload.success === false) {
    throw new ApiError(
      response.status,
      payload && payload.code,
      (payload && payload.message) || response.statusText,
      payload && payload.details,
    );
  }
  return payload.data;
}

/**
 * An authenticated call. On 401 the access token is refreshed once and the call repeated;
 * when that fails too the user is signed out (the app shows the sign-in screen).
 */
export async function request(method, path, options = {}) {
  if (!tokens) throw new ApiError(401, 4003, "signed out");
  try {
    return await send(method, path, { ...options, token: tokens.accessToken });
  } catch (err) {
    if (!(err instanceof ApiError) || !err.isAuth) throw err;
  }
  try {
    await refreshAccessToken();
  } catch (err) {
    if (err instanceof ApiError && err.isNetwork) throw err;
    signOut("expired");
    throw new ApiError(401, 4003, "session expired");
  }
  try {
    return await send(method, path, { ...options, token: tokens.accessToken });
  } catch (err) {
    if (err instanceof ApiError && err.isAuth) signOut("expired");
    throw err;
  }
}

export const api = {
  register: (email, password) => send("POST", "/api/auth/register", { json: { email, password } }),
  login: (email, password) => send("POST", "/api/auth/login", { json: { email, password } }),
  me: () => request("GET", "/api/auth/me"),
  taskTypes: () => send("GET", "/api/task/types"),
  /** `onProgress(loaded, total)` follows the bytes sent (optional). */
  upload(file, { onProgress, signal } = {}) {
    const form = new FormData();
    form.append("file", file, file.name);
    return request("POST", "/api/uploads", { form, onUploadProgress: onProgress, signal });
  },
  createTask: (body, idempotencyKey) =>
    request("POST", "/api/task/create", { json: body, headers: { "Idempotency-Key": idempotencyKey } }),
  listTasks: (query, signal) => request("GET", `/api/task/list?${queryString(query)}`, { signal }),
  getTask: (id, signal) => request("GET", `/api/task/${encodeURIComponent(id)}`, { signal }),
  cancelTask: (id) => request("POST", `/api/task/${encodeURIComponent(id)}/cancel`),
  retryTask: (id) => request("POST", `/api/task/${encodeURIComponent(id)}/retry`),
  listKeys: () => request("GET", "/api/keys"),
  createKey: (name) => request("POST", "/api/keys", { json: { name } }),
  revokeKey: (id) => request("DELETE", `/api/keys/${encodeURIComponent(id)}`),
  downloadZip: (id) => request("GET", `/api/task/${encodeURIComponent(id)}/download`, { raw: true }),
  createBatch: (body, idempotencyKey) =>
    request("POST", "/api/batches", { json: body, headers: { "Idempotency-Key": idempotencyKey } }),
  listBatches: (query, signal) => request("GET", `/api/batches?${queryString(query)}`, { signal }),
  getBatch: (id, signal) => request("GET", `/api/batches/${encodeURIComponent(id)}`, { signal }),
  cancelBatch: (id) => request("POST", `/api/batches/${encodeURIComponent(id)}/cancel`),
  downloadBatchZip: (id) => request("GET", `/api/batches/${encodeURIComponent(id)}/download`, { raw: true }),
};

/** A query string of the values that are set. */
function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== "" && value !== null && value !== undefined) params.set(key, String(value));
  }
  return params;
}

window.addEventListener("storage", (event) => {
  if (event.key !== STORAGE_KEY) return;
  const next = loadTokens();
  if (!next && tokens) signOut("elsewhere");
  else if (next) {
    tokens = next;
    scheduleRefresh();
  }
});

scheduleRefresh();

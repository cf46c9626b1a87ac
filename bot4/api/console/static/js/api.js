// The console's only way to the server: fetch to the API that served the page, with the
// signed-in key as a bearer token. The key lives in sessionStorage: gone when the tab
// closes, never in a cookie (so no other site can make the browser send it), never in
// the URL (so it is in no history, log or referrer).

const STORAGE_KEY = "bot4.console.apiKey";

/** An answer the API refused or could not give; `message` is the API's own words. */
export class ApiError extends Error {
  constructor(status, message, { correlationId = null, document = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.correlationId = correlationId;
    this.document = document;
  }
}

export function storedKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

let unauthorized = () => {};

/** Call `handler(error)` whenever the API refuses the key (401): the session is over. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Call the API and return its JSON document.
 * Throws ApiError with the API's `error` message (and its correlation id) on any refusal.
 */
export async function call(path, { method = "GET", body, key = storedKey() } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch (error) {
    throw new ApiError(0, `the API does not answer (${error.message})`);
  }
  const text = await answer.text();
  let document = null;
  try {
    document = text ? JSON.parse(text) : null;
  } catch {
    document = null;
  }
  if (!answer.ok) {
    const message = document && typeof document.error === "string"
      ? document.error
      : `HTTP ${answer.status} ${answer.statusText}`.trim();
    const error = new ApiError(answer.status, message, {
      correlationId: answer.headers.get("X-Correlation-Id"),
      document,
    });
    if (answer.status === 401) unauthorized(error);
    throw error;
  }
  return document;
}

/** Return a query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

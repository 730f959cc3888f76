// The one way the pages talk to the server: the same /v1 API as every client, with the
// session cookie; state-changing calls echo the CSRF cookie in X-CSRF-Token.

export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)pivotal_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET") init.headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "The server could not be reached. Check your connection and retry.", null);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    let detail = (data && data.detail) || `The server answered ${response.status}.`;
    if (data && Array.isArray(data.errors) && data.errors.length) {
      detail += ` ${data.errors.map((e) => `${String(e.field || "").replace(/^(query|body)\./, "")}: ${e.message}`).join("; ")}`;
    }
    if (response.status === 401) document.dispatchEvent(new CustomEvent("signed-out", { detail }));
    throw new ApiError(response.status, detail, data);
  }
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

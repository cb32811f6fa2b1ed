// The API as the UI uses it: the key from sessionStorage, problem+json errors, pages, SSE over fetch.
const SLOT = "meltica.key";

export const key = {
  get: () => sessionStorage.getItem(SLOT) || "",
  set: (k) => sessionStorage.setItem(SLOT, k),
  clear: () => sessionStorage.removeItem(SLOT),
};

export class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.type = body.type || "";
    this.body = body;
  }
}

/** The key header; without a key (signed out, or signing out) nothing is sent. */
function auth() {
  const k = key.get();
  if (!k) throw new Problem(401, { detail: "not signed in" });
  return { "X-API-Key": k };
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = auth();
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Problem(r.status, data || {});
  return data;
}

/** The text of a document the API serves (an HTML report); a problem+json answer throws. */
export async function text(path) {
  const r = await fetch(path, { headers: auth() });
  if (!r.ok) throw new Problem(r.status, await r.json().catch(() => ({})));
  return r.text();
}

/** Every item of a paged list, following next_cursor. */
export async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** Server-Sent Events of `path` (EventSource cannot send the key header); calls onEvent(type, data). */
export async function stream(path, onEvent, signal, onOpen) {
  const r = await fetch(path, { headers: auth(), signal });
  if (!r.ok) throw new Problem(r.status, await r.json());
  onOpen();
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const fields = Object.fromEntries(
        block.split("\n").filter((l) => l && !l.startsWith(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
      );
      if (fields.data) onEvent(fields.event, JSON.parse(fields.data));
    }
  }
}

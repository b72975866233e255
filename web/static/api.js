// api.js — JSON requests to the broker's HTTP API.

/**
 * request sends one JSON request to the broker with the session cookie and
 * returns {status, data, headers}. data is the parsed JSON body, or {} when
 * the body is empty or not JSON. It throws only when the broker cannot be
 * reached at all.
 *
 * @param {string} method
 * @param {string} path
 * @param {object} [body] sent as JSON
 * @param {Record<string,string>} [headers] extra request headers
 */
export async function request(method, path, body, headers = {}) {
  return send(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json', headers);
}

/**
 * requestText sends text (e.g. YAML) as the body with the given
 * Content-Type and returns {status, data, headers} as request does.
 *
 * @param {string} method
 * @param {string} path
 * @param {string} text
 * @param {string} contentType
 * @param {Record<string,string>} [headers] extra request headers
 */
export function requestText(method, path, text, contentType, headers = {}) {
  return send(method, path, text, contentType, headers);
}

async function send(method, path, body, contentType, headers) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: {
      'Accept': 'application/json',
      'Content-Type': contentType,
      ...headers,
    },
  };
  if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(path, init);
  let data = {};
  const text = await res.text();
  if (text) {
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object') {
        data = parsed;
      }
    } catch {
      // Not JSON (e.g. a proxy's error page): keep the status only.
    }
  }
  return { status: res.status, data, headers: res.headers };
}

/**
 * errorText returns the broker's {"error": "..."} message of a response, or
 * fallback when it has none.
 */
export function errorText(resp, fallback) {
  const e = resp && resp.data && resp.data.error;
  return typeof e === 'string' && e !== '' ? e : fallback;
}

/** UNREACHABLE is the message shown when the broker cannot be reached. */
export const UNREACHABLE = 'サーバーに接続できません。 Cannot reach the server.';

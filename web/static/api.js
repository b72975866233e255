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

// pledgeGate, when a page sets one, is asked about a request the broker
// refused because the user has not accepted the pledge in force: it shows
// the pledge and resolves true once it is accepted (the request is then sent
// again, once) or false (the refusal is returned).
let pledgeGate = null;

/**
 * onPledgeRequired sets this page's pledge gate: a function returning a
 * promise of true (the pledge was accepted) or false.
 *
 * @param {() => Promise<boolean>} gate
 */
export function onPledgeRequired(gate) {
  pledgeGate = gate;
}

/**
 * isPledgeRequired reports whether resp is the broker's refusal of a user
 * who has not accepted the pledge in force: 403 with pledgeRequired.
 */
export function isPledgeRequired(resp) {
  return resp.status === 403 && resp.data.pledgeRequired === true;
}

async function send(method, path, body, contentType, headers) {
  const resp = await sendOnce(method, path, body, contentType, headers);
  // The broker refuses before doing anything, so sending again is safe.
  if (pledgeGate !== null && isPledgeRequired(resp) && await pledgeGate()) {
    return sendOnce(method, path, body, contentType, headers);
  }
  return resp;
}

async function sendOnce(method, path, body, contentType, headers) {
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

/**
 * pageSession reads the caller's session for a staff page (admin,
 * approvals, audit) and returns it when its role is one of roles. Otherwise
 * it returns null after calling refuse(text, login) with why: the broker is
 * unreachable (login false), nobody is logged in (texts.login) or the role
 * does not fit (texts.role). The page only decides what to show: the broker
 * refuses the page's APIs to any other role whatever this says.
 *
 * @param {string[]} roles
 * @param {{login: string, role: string}} texts
 * @param {(text: string, login: boolean) => void} refuse
 */
export async function pageSession(roles, texts, refuse) {
  let resp;
  try {
    resp = await request('GET', '/api/session');
  } catch {
    refuse(UNREACHABLE, false);
    return null;
  }
  if (resp.status === 401) {
    refuse(texts.login, true);
    return null;
  }
  if (resp.status !== 200 || !roles.includes(resp.data.role)) {
    refuse(texts.role, true);
    return null;
  }
  return resp.data;
}

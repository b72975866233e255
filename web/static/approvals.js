// approvals.js — the approver's page (/approvals, approver or admin role):
// the queue of pending site requests, each approved into a profile with an
// expiry or rejected with a comment, and the decided ones below (ALLOW-1);
// for approvers only, the files held by the transfer channel, each
// released or rejected with a comment, and the recent decisions (XFER-2,
// XFER-5).

import { request, errorText, pageSession, UNREACHABLE } from './api.js';
import { el, option, str, list } from './dom.js';
import { formatSize } from './size.js';
import * as when from './when.js';
import { installPledgeGate } from './pledgegate.js';

const DEFAULT_DAYS = 30; // the expiry offered for an approval
const REFRESH_MS = 30 * 1000; // the queue is reloaded this often while the page is visible

const $ = (id) => document.getElementById(id);
const message = $('approvals-message');
const main = $('approvals-main');
const queue = $('requests');
const queueEmpty = $('requests-empty');
const count = $('pending-count');
const result = $('approvals-result');
const pageError = $('approvals-error');
const history = $('history');
const historyEmpty = $('history-empty');
const held = $('held-transfers');
const heldList = $('held-list');
const heldEmpty = $('held-empty');
const heldCount = $('held-count');
const heldResult = $('held-result');
const heldError = $('held-error');
const transferHistory = $('transfer-history');
const transferHistoryEmpty = $('transfer-history-empty');
const RECENT_DECISIONS = 50; // how many decided files the page lists

let me = ''; // the logged-in user
let approver = false; // files are decided by approvers only (XFER-5)
let profiles = []; // names offered in each request's profile list
let defaultProfile = '';

/** refuse shows why the page does not open, with the login link if login. */
function refuse(text, login = true) {
  message.textContent = text;
  $('approvals-login').hidden = !login;
  main.hidden = true;
}

async function get(path) {
  try {
    return await request('GET', path);
  } catch {
    return null;
  }
}

/**
 * loadProfiles finds the profiles an approval can go to: the whole policy
 * for an admin, else the list the broker gives approvers.
 */
async function loadProfiles(role) {
  if (role === 'admin') {
    const resp = await get('/api/admin/policy');
    if (resp && resp.status === 200 && resp.data.policy) {
      profiles = list(resp.data.policy.profiles).map((p) => str(p.name)).filter((n) => n !== '');
      defaultProfile = str(resp.data.policy.default);
      return;
    }
  }
  const resp = await get('/api/site-requests/profiles');
  if (resp && resp.status === 200) {
    const names = Array.isArray(resp.data) ? resp.data : list(resp.data.profiles);
    profiles = names.map((n) => (typeof n === 'string' ? n : str(n && n.name))).filter((n) => n !== '');
    defaultProfile = typeof resp.data.default === 'string' ? resp.data.default : '';
  }
}

// ---- the queue ----

function profileSelect(r) {
  const names = [...profiles];
  const asked = str(r.profile);
  if (asked !== '' && !names.includes(asked)) {
    names.unshift(asked); // the requester's own profile, even if not listed
  }
  const want = asked !== '' ? asked : (names.includes(defaultProfile) ? defaultProfile : names[0]);
  const sel = el('select', { name: 'profile', 'aria-label': 'プロファイル Profile' });
  for (const n of names) {
    sel.append(option(n, n, n === want));
  }
  return sel;
}

function requestCard(r) {
  const id = str(r.id);
  const host = str(r.host);
  const user = str(r.user);
  const own = user !== '' && user === me;
  const expires = el('input', { type: 'datetime-local', name: 'expires', value: when.fromNow(DEFAULT_DAYS) });
  const never = el('input', { type: 'checkbox', name: 'noexpiry' });
  never.addEventListener('change', () => {
    expires.disabled = never.checked;
  });
  return el('article', { class: 'request', data: { requestId: id, host, user }, 'aria-label': `${host} (${user})` },
    el('div', { class: 'who' },
      el('span', { class: 'host', text: host }),
      el('span', { text: `申請者 by ${user}` }),
      el('span', { class: 'muted', text: when.show(r.created) }),
      own ? el('span', { class: 'badge warn', text: 'ご自身の申請 your own request' }) : null),
    el('p', { class: 'url' }, el('code', { text: str(r.url) })),
    el('p', { class: 'reason', text: str(r.reason) }),
    el('div', { class: 'decide' },
      el('label', {}, 'プロファイル Profile', profileSelect(r)),
      el('label', {}, `期限 Expires (既定 ${DEFAULT_DAYS} 日 days)`, expires),
      el('label', { class: 'check' }, never, '期限なし No expiry'),
      el('label', { class: 'grow' }, 'コメント Comment (却下には必須 required to reject)',
        el('input', { name: 'comment', autocomplete: 'off' })),
      el('div', { class: 'buttons' },
        el('button', { type: 'button', class: 'primary', data: { approve: id }, text: '承認 Approve' }),
        el('button', { type: 'button', class: 'danger', data: { reject: id }, text: '却下 Reject' }))),
    el('p', { class: 'error row-error', role: 'alert', data: { rowError: id } }));
}

/**
 * renderQueue shows the pending requests, keeping the card (and what the
 * approver typed in it) of every request that is still pending.
 */
function renderQueue(items) {
  const keep = new Map([...queue.querySelectorAll('[data-request-id]')].map((c) => [c.dataset.requestId, c]));
  const cards = items.map((r) => keep.get(str(r.id)) || requestCard(r));
  queue.replaceChildren(...cards);
  queueEmpty.hidden = items.length > 0;
  count.textContent = String(items.length);
}

function renderHistory(items) {
  const body = history.tBodies[0];
  body.replaceChildren();
  for (const r of items) {
    const state = str(r.state);
    const label = state === 'approved' ? '承認 approved' : state === 'rejected' ? '却下 rejected' : state;
    body.append(el('tr', { data: { requestId: str(r.id), state } },
      el('td', { text: when.show(r.decided) }),
      el('td', { text: str(r.user) }),
      el('td', {}, el('code', { text: str(r.host) })),
      el('td', { class: `state-${state}`, text: label }),
      el('td', { text: str(r.decidedBy) }),
      el('td', { text: state === 'approved' ? str(r.profile) : '' }),
      el('td', { text: state === 'approved' ? when.show(r.expires, '無期限 never') : '' }),
      el('td', { class: 'wrap', text: str(r.comment) })));
  }
  historyEmpty.hidden = items.length > 0;
}

async function refreshRequests() {
  const [pending, all] = await Promise.all([get('/api/site-requests?state=pending'), get('/api/site-requests')]);
  if (!pending || !all) {
    pageError.textContent = UNREACHABLE;
    return;
  }
  if (pending.status !== 200) {
    pageError.textContent = errorText(pending, `申請を読み込めません (${pending.status})。 Cannot load the requests.`);
    return;
  }
  pageError.textContent = '';
  const items = list(pending.data).slice().sort((a, b) => str(a.created).localeCompare(str(b.created)));
  renderQueue(items);
  if (all.status === 200) {
    const decided = list(all.data).filter((r) => r.state === 'approved' || r.state === 'rejected');
    decided.sort((a, b) => str(b.decided).localeCompare(str(a.decided)));
    renderHistory(decided);
  }
}

// ---- decisions ----

async function decide(card, approve) {
  const id = card.dataset.requestId;
  const host = card.dataset.host;
  const rowError = card.querySelector('[data-row-error]');
  const q = (name) => card.querySelector(`[name="${name}"]`);
  const comment = q('comment').value.trim();
  rowError.textContent = '';
  result.textContent = '';
  let path;
  let body;
  if (approve) {
    const profile = q('profile').value;
    if (profile === '') {
      rowError.textContent = 'プロファイルを選んでください。 Choose a profile.';
      return;
    }
    let expires = '';
    if (!q('noexpiry').checked) {
      expires = when.rfc3339(q('expires').value);
      if (!expires) {
        rowError.textContent = '期限を入力するか「期限なし」を選んでください。 Enter an expiry or choose "No expiry".';
        return;
      }
      if (when.past(expires)) {
        rowError.textContent = '期限が過去です。 The expiry is in the past.';
        return;
      }
    }
    path = `/api/site-requests/${encodeURIComponent(id)}/approve`;
    body = { profile, expires, comment };
  } else {
    if (comment === '') {
      rowError.textContent = '却下の理由をコメントに入力してください。 Enter a comment saying why the request is rejected.';
      q('comment').focus();
      return;
    }
    path = `/api/site-requests/${encodeURIComponent(id)}/reject`;
    body = { comment };
  }
  const buttons = card.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  let resp;
  try {
    resp = await request('POST', path, body);
  } catch {
    rowError.textContent = UNREACHABLE;
    return;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
  if (resp.status === 403) {
    const own = card.dataset.user === me;
    rowError.textContent = errorText(resp, 'この申請は判断できません。 You may not decide this request.') + (own
      ? '\nご自身の申請は承認できません。他の承認者に依頼してください。 You cannot decide your own request; another approver must do it.'
      : '');
    return;
  }
  if (resp.status < 200 || resp.status >= 300) {
    rowError.textContent = errorText(resp, `処理できませんでした (${resp.status})。 The decision failed.`);
    return;
  }
  result.textContent = approve
    ? `「${host}」を承認しました (${body.profile})。 "${host}" approved into "${body.profile}".`
    : `「${host}」を却下しました。 "${host}" rejected.`;
  card.remove();
  refreshRequests();
}

// ---- held files ----

const DIRECTIONS = { download: 'ダウンロード download', print: '印刷 print', upload: 'アップロード upload' };

// fact is one labelled value of a held file; an empty value shows none.
function fact(label, value, none = '—') {
  const v = typeof value === 'string' ? value : '';
  return [el('dt', { text: label }), el('dd', { text: v !== '' ? v : none })];
}

function codeFact(label, value) {
  const v = str(value);
  return [el('dt', { text: label }), el('dd', {}, v !== '' ? el('code', { text: v }) : '—')];
}

function heldCard(t) {
  const id = str(t.id);
  const user = str(t.user);
  const name = str(t.name);
  const own = user !== '' && user === me;
  const who = str(t.terminal) !== '' ? `${user} (${str(t.terminal)})` : user;
  const type = [str(t.mime), str(t.class)].filter((s) => s !== '').join(' · ');
  return el('article', { class: 'request held-transfer', data: { id, user, name }, 'aria-label': `${name} (${user})` },
    el('div', { class: 'who' },
      el('span', { class: 'host file', text: name }),
      el('span', { text: `利用者 by ${who}` }),
      el('span', { class: 'muted', text: when.show(t.created) }),
      el('span', { class: 'badge', text: DIRECTIONS[t.direction] || str(t.direction) }),
      own ? el('span', { class: 'badge warn', text: 'ご自身のファイル your own file' }) : null),
    el('dl', { class: 'facts' },
      ...fact('サイズ Size', typeof t.size === 'number' && t.size > 0 ? formatSize(t.size) : ''),
      ...fact('種類 Type', type),
      ...codeFact('SHA-256', t.sha256),
      ...codeFact('取得元 Source', t.source),
      ...fact('ウイルス検査 Scan', str(t.scan)),
      ...fact('内容検査 Inspection', str(t.inspection)),
      ...fact('保留の理由 Why held', str(t.reason)),
      ...fact('ルール Rule', str(t.rule)),
      ...fact('利用者の理由 Justification', str(t.justification), 'まだありません none yet')),
    el('div', { class: 'decide' },
      el('label', { class: 'grow' }, 'コメント Comment (利用者に伝わります shown to the clinician)',
        el('input', { class: 'comment', name: 'comment', autocomplete: 'off', maxlength: 1000 })),
      el('div', { class: 'buttons' },
        el('button', { type: 'button', class: 'approve primary', text: '承認 Approve' }),
        el('button', { type: 'button', class: 'reject danger', text: '却下 Reject' }))),
    el('p', { class: 'error row-error', role: 'alert' }));
}

/**
 * renderHeld shows the held files, keeping the card (and the comment typed
 * in it) of every file that is still held.
 */
function renderHeld(items) {
  const keep = new Map([...heldList.querySelectorAll('.held-transfer')].map((c) => [c.dataset.id, c]));
  heldList.replaceChildren(...items.map((t) => keep.get(str(t.id)) || heldCard(t)));
  heldEmpty.hidden = items.length > 0;
  heldCount.textContent = String(items.length);
}

function renderTransferHistory(items) {
  const body = transferHistory.tBodies[0];
  body.replaceChildren();
  for (const t of items) {
    const approved = str(t.state) === 'released';
    body.append(el('tr', { data: { id: str(t.id), state: str(t.state) } },
      el('td', { text: when.show(t.decided) }),
      el('td', { text: str(t.user) }),
      el('td', { class: 'wrap', text: str(t.name) }),
      el('td', {}, el('code', { class: 'hash', text: str(t.sha256).slice(0, 16), title: str(t.sha256) })),
      el('td', { class: approved ? 'state-approved' : 'state-rejected', text: approved ? '承認 approved' : '却下 rejected' }),
      el('td', { text: str(t.approver) }),
      el('td', { class: 'wrap', text: str(t.comment) })));
  }
  transferHistoryEmpty.hidden = items.length > 0;
}

async function refreshTransfers() {
  if (!approver) {
    return;
  }
  const [pending, decided] = await Promise.all([get('/api/approvals/transfers'), get('/api/approvals/transfers?state=decided')]);
  if (!pending || !decided) {
    heldError.textContent = UNREACHABLE;
    return;
  }
  if (pending.status !== 200) {
    heldError.textContent = errorText(pending, `保留中のファイルを読み込めません (${pending.status})。 Cannot load the held files.`);
    return;
  }
  heldError.textContent = '';
  renderHeld(list(pending.data));
  if (decided.status === 200) {
    const items = list(decided.data).slice();
    items.sort((a, b) => (Date.parse(str(b.decided)) || 0) - (Date.parse(str(a.decided)) || 0));
    renderTransferHistory(items.slice(0, RECENT_DECISIONS));
  }
}

async function decideTransfer(card, approve) {
  const id = card.dataset.id;
  const name = card.dataset.name;
  const rowError = card.querySelector('.error');
  const comment = card.querySelector('.comment').value.trim();
  rowError.textContent = '';
  heldResult.textContent = '';
  const buttons = card.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  let resp;
  try {
    resp = await request('POST', `/api/approvals/transfers/${encodeURIComponent(id)}/${approve ? 'approve' : 'reject'}`, { comment });
  } catch {
    rowError.textContent = UNREACHABLE;
    return;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
  if (resp.status !== 200) {
    const own = card.dataset.user === me;
    rowError.textContent = errorText(resp, `処理できませんでした (${resp.status})。 The decision failed.`) + (resp.status === 403 && own
      ? '\nご自身のファイルは判断できません。他の承認者に依頼してください。 You cannot decide on your own file; another approver must do it.'
      : '');
    return;
  }
  heldResult.textContent = approve
    ? `「${name}」を承認しました。 "${name}" was released to ${card.dataset.user}.`
    : `「${name}」を却下しました。 "${name}" was rejected and deleted.`;
  card.remove();
  refreshTransfers();
}

heldList.addEventListener('click', (ev) => {
  const a = ev.target.closest('.approve');
  const r = ev.target.closest('.reject');
  const card = ev.target.closest('.held-transfer');
  if (card && (a || r)) {
    decideTransfer(card, a !== null);
  }
});
$('held-refresh').addEventListener('click', refreshTransfers);

/** refresh reloads everything the page shows. */
function refresh() {
  return Promise.all([refreshRequests(), refreshTransfers()]);
}

queue.addEventListener('click', (ev) => {
  const a = ev.target.closest('[data-approve]');
  const r = ev.target.closest('[data-reject]');
  const card = ev.target.closest('[data-request-id]');
  if (card && (a || r)) {
    decide(card, a !== null);
  }
});
$('requests-refresh').addEventListener('click', refreshRequests);

async function load() {
  const session = await pageSession(['approver', 'admin'], {
    login: '承認者としてログインしてください。 Please log in as an approver.',
    role: 'このページは承認者と管理者専用です。 This page is for approvers and administrators only.',
  }, refuse);
  if (session === null) {
    return;
  }
  const role = str(session.role);
  me = str(session.user);
  $('admin-link').hidden = role !== 'admin';
  approver = role === 'approver';
  held.hidden = !approver;
  $('held-not-approver').hidden = approver;
  await loadProfiles(role);
  message.hidden = true;
  main.hidden = false;
  await refresh();
  setInterval(() => {
    if (!document.hidden) {
      refresh();
    }
  }, REFRESH_MS);
}

installPledgeGate();
load();

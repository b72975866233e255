// killswitch.js — the kill switches of the admin page (IR-1): block a host
// everywhere at once, end one user's sessions or every session, suspend
// every file transfer, and the list of live sessions.

import { request, errorText, UNREACHABLE } from './api.js';
import { el, busy, str, list, confirmAction } from './dom.js';
import * as when from './when.js';

/** KillSwitch drives the kill switches section. */
export class KillSwitch {
  /** @param {import('./policystore.js').PolicyStore} store */
  constructor(store) {
    this.store = store;
    const $ = (id) => document.getElementById(id);
    this.blockForm = $('block-form');
    this.blockResult = $('block-result');
    this.blockError = $('block-error');
    this.blocked = $('blocked');
    this.blockedEmpty = $('blocked-empty');
    this.userForm = $('end-user-form');
    this.endAll = $('end-all');
    this.sessionsResult = $('sessions-result');
    this.sessionsError = $('sessions-error');
    this.sessions = $('sessions');
    this.sessionsEmpty = $('sessions-empty');

    store.subscribe((doc) => this.renderBlocked(doc));
    this.blockForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.block();
    });
    this.blocked.addEventListener('click', (ev) => {
      const b = ev.target.closest('[data-unblock]');
      if (b) {
        this.unblock(b.dataset.unblock);
      }
    });
    this.userForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.endUser(this.userForm.elements.user.value.trim());
    });
    this.endAll.addEventListener('click', () => this.endEverything());
    this.sessions.addEventListener('click', (ev) => {
      const b = ev.target.closest('[data-end-user]');
      if (b) {
        this.endUser(b.dataset.endUser);
      }
    });
    $('sessions-refresh').addEventListener('click', () => this.loadSessions());
    this.suspendForm = $('suspend-form');
    this.suspendState = $('suspend-state');
    this.suspendError = $('suspend-error');
    this.suspendForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.suspend(true);
    });
    $('suspend-off').addEventListener('click', () => this.suspend(false));
  }

  /** shown refreshes the live sessions and the transfer switch when the section is opened. */
  shown() {
    this.loadSessions();
    this.loadSuspension();
  }

  // ---- all transfers ----

  showSuspension(s) {
    this.suspendForm.dataset.on = s.on ? 'true' : 'false';
    this.suspendState.textContent = s.on
      ? `停止中 Suspended — ${str(s.reason)} (${str(s.by)}, ${when.show(s.at)})`
      : '転送は方針どおり動作しています。 Transfers follow the policy.';
  }

  async loadSuspension() {
    let resp;
    try {
      resp = await request('GET', '/api/admin/transfers/suspend');
    } catch {
      this.suspendError.textContent = UNREACHABLE;
      return;
    }
    if (resp.status !== 200) {
      this.suspendError.textContent = errorText(resp, `転送の状態を読み込めません (${resp.status})。 Cannot load the transfer switch.`);
      return;
    }
    this.showSuspension(resp.data || {});
  }

  async suspend(on) {
    this.suspendError.textContent = '';
    const reason = this.suspendForm.elements.reason.value.trim();
    if (on && reason === '') {
      this.suspendError.textContent = '理由を入力してください。 Enter a reason.';
      return;
    }
    if (on && !await confirmAction('すべてのファイル転送・コピー・貼り付け・印刷を今すぐ停止しますか? Suspend every file transfer, copy, paste and print now?', '停止 Suspend')) {
      return;
    }
    let resp;
    try {
      resp = await request('PUT', '/api/admin/transfers/suspend', { on, reason: on ? reason : '' });
    } catch {
      this.suspendError.textContent = UNREACHABLE;
      return;
    }
    if (resp.status !== 200) {
      this.suspendError.textContent = errorText(resp, `変更できませんでした (${resp.status})。 Could not change the transfer switch.`);
      return;
    }
    this.suspendForm.reset();
    this.showSuspension(resp.data || {});
  }

  // ---- blocked hosts ----

  renderBlocked(doc) {
    const body = this.blocked.tBodies[0];
    body.replaceChildren();
    for (const b of doc.blocked) {
      const host = str(b.host);
      body.append(el('tr', { data: { host } },
        el('td', {}, el('code', { text: host })),
        el('td', { class: 'wrap', text: str(b.reason) }),
        el('td', { text: str(b.by) }),
        el('td', { text: when.show(b.at) }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', data: { unblock: host }, text: '解除 Unblock', 'aria-label': `解除 Unblock ${host}` }))));
    }
    this.blockedEmpty.hidden = doc.blocked.length > 0;
  }

  async block() {
    const f = this.blockForm.elements;
    this.blockError.textContent = '';
    this.blockResult.textContent = '';
    const host = f.host.value.trim();
    const reason = f.reason.value.trim();
    if (host === '' || reason === '') {
      this.blockError.textContent = 'ホストと理由を入力してください。 Enter the host and a reason.';
      return;
    }
    const err = await busy(this.blockForm, () => this.store.call('POST', '/api/admin/blocked', { host, reason }));
    if (err !== '') {
      this.blockError.textContent = err;
      return;
    }
    this.blockForm.reset();
    this.blockResult.textContent = `「${host}」を全体で遮断しました。 "${host}" is blocked everywhere.`;
  }

  async unblock(host) {
    this.blockError.textContent = '';
    this.blockResult.textContent = '';
    const err = await this.store.call('DELETE', '/api/admin/blocked/' + encodeURIComponent(host));
    if (err !== '') {
      this.blockError.textContent = err;
      return;
    }
    this.blockResult.textContent = `「${host}」の遮断を解除しました。 "${host}" is no longer blocked.`;
  }

  // ---- sessions ----

  async loadSessions() {
    let resp;
    try {
      resp = await request('GET', '/api/admin/sessions');
    } catch {
      this.sessionsError.textContent = UNREACHABLE;
      return;
    }
    if (resp.status !== 200) {
      this.sessionsError.textContent = errorText(resp, `セッション一覧を読み込めません (${resp.status})。 Cannot load the sessions.`);
      return;
    }
    const rows = list(resp.data);
    const body = this.sessions.tBodies[0];
    body.replaceChildren();
    for (const s of rows) {
      const user = str(s.user);
      body.append(el('tr', { data: { sessionId: str(s.id), user } },
        el('td', { text: user }),
        el('td', { text: str(s.role) }),
        el('td', { text: str(s.terminal) }),
        el('td', { text: str(s.profile) }),
        el('td', { text: str(s.state) }),
        el('td', { text: when.show(s.started) }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', class: 'danger', data: { endUser: user }, text: '終了 End', 'aria-label': `${user} のセッションを終了 End ${user}'s sessions` }))));
    }
    this.sessionsEmpty.hidden = rows.length > 0;
  }

  async endUser(user) {
    this.sessionsError.textContent = '';
    this.sessionsResult.textContent = '';
    if (user === '') {
      this.sessionsError.textContent = 'ユーザー名を入力してください。 Enter a user name.';
      return;
    }
    if (!await confirmAction(`${user} のすべてのセッションを終了しますか? End all of ${user}'s sessions?`, '終了 End sessions')) {
      return;
    }
    await this.end('/api/admin/sessions/' + encodeURIComponent(user),
      `${user} のセッションを終了しました。 ${user}'s sessions were ended.`);
    this.userForm.reset();
  }

  async endEverything() {
    this.sessionsError.textContent = '';
    this.sessionsResult.textContent = '';
    if (!await confirmAction('全ユーザーのすべてのセッションを今すぐ終了しますか? 作業中の内容は失われます。 End EVERY session of every user now? Work in progress is lost.', '全セッションを終了 End all sessions')) {
      return;
    }
    await this.end('/api/admin/sessions', '全セッションを終了しました。 All sessions were ended.');
  }

  async end(path, done) {
    let resp;
    try {
      resp = await request('DELETE', path);
    } catch {
      this.sessionsError.textContent = UNREACHABLE;
      return;
    }
    if (resp.status < 200 || resp.status >= 300) {
      this.sessionsError.textContent = errorText(resp, `終了できませんでした (${resp.status})。 Could not end the sessions.`);
      return;
    }
    this.sessionsResult.textContent = done;
    this.loadSessions();
  }
}

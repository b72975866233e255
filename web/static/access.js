// access.js — site requests from the viewer (ALLOW-1): when the clinician
// presses "request access" on a block page, the broker sends
// `accessRequest` and this module asks for a reason in <dialog
// id="access-dialog"> and files the request; `siteRequest` tells the
// outcome.

import { request, errorText, UNREACHABLE } from './api.js';

const OUTCOME_MS = 12 * 1000; // an outcome stays longer than other toasts

/** Access drives #access-dialog and shows site request outcomes. */
export class Access {
  /**
   * @param {object} o
   * @param {(msg: object) => boolean} o.send
   * @param {(text: string, ms?: number) => void} o.toast
   * @param {() => void} o.focusRemote gives keyboard focus back to the page
   * @param {() => string} o.currentHost the host the toolbar shows
   */
  constructor({ send, toast, focusRemote, currentHost }) {
    this.send = send;
    this.toast = toast;
    this.focusRemote = focusRemote;
    this.currentHost = currentHost;
    this.pending = null; // {host, url} of the request being written
    const $ = (id) => document.getElementById(id);
    this.dlg = $('access-dialog');
    this.form = $('access-form');
    this.hostEl = $('access-host');
    this.urlEl = $('access-url');
    this.reason = $('access-reason');
    this.error = $('access-error');
    this.sendButton = $('access-send');
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    $('access-cancel').addEventListener('click', () => this.close());
    this.dlg.addEventListener('close', () => {
      this.pending = null;
      this.focusRemote();
    });
  }

  /** open asks for the reason for an `accessRequest` message. */
  open(m) {
    const host = typeof m.host === 'string' ? m.host : '';
    if (host === '') {
      return;
    }
    const url = typeof m.url === 'string' ? m.url : '';
    if (!this.pending || this.pending.host !== host) {
      this.reason.value = '';
    }
    this.pending = { host, url };
    this.hostEl.textContent = host;
    this.urlEl.textContent = url;
    this.urlEl.hidden = url === '';
    this.error.textContent = '';
    this.sendButton.disabled = false;
    if (!this.dlg.open) {
      this.dlg.showModal();
    }
    this.reason.focus();
  }

  close() {
    if (this.dlg.open) {
      this.dlg.close();
    }
  }

  async submit() {
    const p = this.pending;
    if (!p) {
      return;
    }
    const reason = this.reason.value.trim();
    if (reason === '') {
      this.error.textContent = '理由を入力してください。 Enter why you need this site.';
      this.reason.focus();
      return;
    }
    this.error.textContent = '';
    this.sendButton.disabled = true;
    let resp;
    try {
      resp = await request('POST', '/api/site-requests', { host: p.host, url: p.url, reason });
    } catch {
      this.error.textContent = UNREACHABLE;
      return;
    } finally {
      this.sendButton.disabled = false;
    }
    if (resp.status < 200 || resp.status >= 300) {
      this.error.textContent = errorText(resp, `申請できませんでした (${resp.status})。 The request could not be sent.`);
      return;
    }
    this.reason.value = '';
    this.close();
    this.toast(`${p.host} の利用を申請しました。結果はここでお知らせします。 Requested access to ${p.host}; you will be told the outcome here.`, OUTCOME_MS);
  }

  /**
   * outcome shows a `siteRequest` message. On approval the page is reloaded
   * when it is the site that was requested (its block page), so the site
   * works at once; another page the clinician has moved on to is left alone.
   */
  outcome(m) {
    const host = typeof m.host === 'string' ? m.host : '';
    const comment = typeof m.comment === 'string' ? m.comment : '';
    if (m.state === 'approved') {
      const here = this.currentHost();
      const reload = here === '' || here.toLowerCase() === host.toLowerCase();
      if (reload && this.send({ type: 'nav', action: 'reload' })) {
        this.toast(`${host} が許可されました。再読み込みします / ${host} is now allowed; reloading.`, OUTCOME_MS);
      } else {
        this.toast(`${host} が許可されました / ${host} is now allowed.`, OUTCOME_MS);
      }
      return;
    }
    if (m.state === 'rejected') {
      const why = comment !== '' ? `\n${comment}` : '';
      this.toast(`${host} の申請は却下されました / Your request for ${host} was rejected.${why}`, OUTCOME_MS);
    }
  }
}

// settings.js — the admin page's banner and pledge texts (NOTICE-1).

import { request, errorText, UNREACHABLE } from './api.js';

/** Settings drives <form id="settings">: load, edit and save with If-Match. */
export class Settings {
  constructor() {
    this.form = document.getElementById('settings');
    this.message = document.getElementById('settings-message');
    this.result = document.getElementById('settings-result');
    this.error = document.getElementById('settings-error');
    this.button = this.form.querySelector('button[type="submit"]');
    // etag is the version of the settings this page loaded; a save sends it
    // as If-Match so that two admins do not overwrite each other unknowingly.
    this.etag = '';
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  /** load fetches the texts and shows the form. */
  async load() {
    let resp;
    try {
      resp = await request('GET', '/api/admin/settings');
    } catch {
      this.message.textContent = UNREACHABLE;
      return;
    }
    if (resp.status !== 200) {
      this.message.textContent = errorText(resp, `設定を読み込めません (${resp.status})。 Cannot load the settings.`);
      return;
    }
    this.etag = resp.headers.get('ETag') || '';
    this.form.elements.banner.value = typeof resp.data.banner === 'string' ? resp.data.banner : '';
    this.form.elements.pledge.value = typeof resp.data.pledge === 'string' ? resp.data.pledge : '';
    this.message.textContent = '';
    this.form.hidden = false;
  }

  async save() {
    const { result, error, button, form } = this;
    result.textContent = '';
    error.textContent = '';
    button.disabled = true;
    const body = { banner: form.elements.banner.value, pledge: form.elements.pledge.value };
    let resp;
    try {
      resp = await request('PUT', '/api/admin/settings', body, this.etag ? { 'If-Match': this.etag } : {});
    } catch {
      error.textContent = UNREACHABLE;
      return;
    } finally {
      button.disabled = false;
    }
    if (resp.status >= 200 && resp.status < 300) {
      this.etag = resp.headers.get('ETag') || '';
      result.textContent = '保存しました。 Saved.';
      return;
    }
    if (resp.status === 412) {
      error.textContent = '他の管理者が先に変更しました。再読み込みしてください。 Someone else changed the settings; reload the page.';
      return;
    }
    error.textContent = errorText(resp, `保存できませんでした (${resp.status})。 Could not save.`);
  }
}

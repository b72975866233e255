// admin.js — the minimal admin page: the login banner and the pledge text.

import { request, errorText, UNREACHABLE } from './api.js';

const message = document.getElementById('admin-message');
const loginLink = document.getElementById('admin-login');
const form = document.getElementById('settings');
const result = document.getElementById('settings-result');
const error = document.getElementById('settings-error');
const button = form.querySelector('button[type="submit"]');

// etag is the version of the settings this page loaded; a save sends it as
// If-Match so that two admins do not overwrite each other unknowingly.
let etag = '';

function refuse(text) {
  message.textContent = text;
  loginLink.hidden = false;
  form.hidden = true;
}

async function load() {
  let resp;
  try {
    resp = await request('GET', '/api/session');
  } catch {
    message.textContent = UNREACHABLE;
    return;
  }
  if (resp.status === 401) {
    refuse('管理者としてログインしてください。 Please log in as an administrator.');
    return;
  }
  if (resp.status !== 200 || resp.data.role !== 'admin') {
    refuse('このページは管理者専用です。 This page is for administrators only.');
    return;
  }
  try {
    resp = await request('GET', '/api/admin/settings');
  } catch {
    message.textContent = UNREACHABLE;
    return;
  }
  if (resp.status !== 200) {
    message.textContent = errorText(resp, `設定を読み込めません (${resp.status})。 Cannot load the settings.`);
    return;
  }
  etag = resp.headers.get('ETag') || '';
  form.elements.banner.value = typeof resp.data.banner === 'string' ? resp.data.banner : '';
  form.elements.pledge.value = typeof resp.data.pledge === 'string' ? resp.data.pledge : '';
  message.hidden = true;
  form.hidden = false;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  result.textContent = '';
  error.textContent = '';
  button.disabled = true;
  const body = { banner: form.elements.banner.value, pledge: form.elements.pledge.value };
  let resp;
  try {
    resp = await request('PUT', '/api/admin/settings', body, etag ? { 'If-Match': etag } : {});
  } catch {
    error.textContent = UNREACHABLE;
    button.disabled = false;
    return;
  }
  button.disabled = false;
  if (resp.status >= 200 && resp.status < 300) {
    etag = resp.headers.get('ETag') || '';
    result.textContent = '保存しました。 Saved.';
    return;
  }
  if (resp.status === 412) {
    error.textContent = '他の管理者が先に変更しました。再読み込みしてください。 Someone else changed the settings; reload the page.';
    return;
  }
  error.textContent = errorText(resp, `保存できませんでした (${resp.status})。 Could not save.`);
});

load();

// setup.js — the first administrator, created with the one-time set-up
// token that the broker printed when it started.

import { request, errorText, UNREACHABLE } from './api.js';

const form = document.getElementById('setup');
const error = document.getElementById('setup-error');
const done = document.getElementById('setup-done');
const button = form.querySelector('button[type="submit"]');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const { token, username, password, password2 } = form.elements;
  error.textContent = '';
  if (token.value.trim() === '' || username.value.trim() === '' || password.value === '') {
    error.textContent = 'すべての欄を入力してください。 Fill in every field.';
    return;
  }
  if (password.value !== password2.value) {
    error.textContent = 'パスワードが一致しません。 The passwords do not match.';
    password2.focus();
    return;
  }
  button.disabled = true;
  let resp;
  try {
    resp = await request('POST', '/api/setup', {
      token: token.value.trim(),
      username: username.value.trim(),
      password: password.value,
    });
  } catch {
    error.textContent = UNREACHABLE;
    button.disabled = false;
    return;
  }
  if (resp.status === 201 || resp.status === 200) {
    password.value = '';
    password2.value = '';
    token.value = '';
    form.hidden = true;
    done.hidden = false;
    done.querySelector('a').focus();
    return;
  }
  button.disabled = false;
  error.textContent = errorText(resp, `作成できませんでした (${resp.status})。 Could not create the administrator.`);
});

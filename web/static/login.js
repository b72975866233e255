// login.js — the login form and the login banner.

import { request, errorText, UNREACHABLE } from './api.js';

const WRONG_CREDENTIALS = 'ユーザー名またはパスワードが違います。 User name or password is wrong.';

/** Login drives <form id="login"> and the banner #banner above it. */
export class Login {
  /**
   * @param {() => void} onLoggedIn called after the broker accepted the
   *   credentials and set the session cookie
   */
  constructor(onLoggedIn) {
    this.onLoggedIn = onLoggedIn;
    this.form = document.getElementById('login');
    this.error = document.getElementById('login-error');
    this.banner = document.getElementById('banner');
    this.button = this.form.querySelector('button[type="submit"]');
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
  }

  /**
   * prepare resets the form for a new login, shows message (e.g. why the
   * clinician was sent back here) and loads the banner. The caller makes the
   * view visible.
   */
  prepare(message = '') {
    this.error.textContent = message;
    this.form.elements.password.value = '';
    this.button.disabled = false;
    this.loadBanner();
  }

  /** focus puts the cursor where the clinician types next. */
  focus() {
    const { username, password } = this.form.elements;
    (username.value ? password : username).focus();
  }

  async loadBanner() {
    try {
      const resp = await request('GET', '/api/banner');
      const text = resp.status === 200 && typeof resp.data.banner === 'string' ? resp.data.banner : '';
      // Text only: the banner is shown with its newlines (CSS pre-wrap),
      // never parsed as HTML.
      this.banner.textContent = text;
      this.banner.hidden = text.trim() === '';
    } catch {
      this.banner.hidden = true;
    }
  }

  async submit() {
    const { username, password } = this.form.elements;
    if (username.value === '' || password.value === '') {
      this.error.textContent = 'ユーザー名とパスワードを入力してください。 Enter your user name and password.';
      return;
    }
    this.error.textContent = '';
    this.button.disabled = true;
    let resp;
    try {
      resp = await request('POST', '/api/login', {
        username: username.value,
        password: password.value,
      });
    } catch {
      this.button.disabled = false;
      this.error.textContent = UNREACHABLE;
      return;
    }
    this.button.disabled = false;
    password.value = '';
    switch (resp.status) {
      case 200:
        this.onLoggedIn();
        return;
      case 401:
        this.error.textContent = WRONG_CREDENTIALS;
        break;
      case 429:
        this.error.textContent = errorText(resp,
          'ログインの試行が多すぎます。しばらく待ってください。 Too many attempts; please wait.');
        break;
      default:
        this.error.textContent = errorText(resp, `ログインできません (${resp.status})。 Login failed.`);
    }
    password.focus();
  }
}

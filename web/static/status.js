// status.js — the session's state: the #state indicator, the overlay for a
// crashed or ended session, and the #toast for passing errors.

const LABELS = {
  connecting: '接続中 Connecting',
  live: '接続済み Live',
  reconnecting: '再接続中 Reconnecting',
  crashed: '停止 Crashed',
  ended: '終了 Ended',
};

// ENDED says in plain language why a session ended (status `reason`).
// After logout, idle, lifetime and admin the login has ended too: the
// viewer shows it on the login form. After shutdown the viewer reconnects.
const ENDED = {
  logout: 'ログアウトしました（この端末または別の端末で）。 You were logged out, at this terminal or another.',
  idle: '一定時間操作がなかったため、セッションを終了しました。 The session ended because it was idle for too long.',
  lifetime: 'セッションの最大利用時間に達しました。 The session reached its maximum duration.',
  shutdown: 'サービスを再起動しています。再開すると新しいブラウザで続けられます。 The service is restarting; the viewer reconnects to a new remote browser.',
  admin: '管理者がセッションを終了しました。 An administrator ended the session.',
  replaced: 'このセッションは別のタブまたは端末で開かれました。 The session was opened in another tab or window.',
};

const TOAST_MS = 5000;

/** Status shows the session state and the messages about it. */
export class Status {
  constructor() {
    const $ = (id) => document.getElementById(id);
    this.state = $('state');
    this.overlay = $('overlay');
    this.message = $('overlay-message');
    this.restart = $('restart');
    this.again = $('again');
    this.toastEl = $('toast');
    this.toastTimer = 0;
    this.onRestart = () => {};
    this.onAgain = () => {};
    this.restart.addEventListener('click', () => this.onRestart());
    this.again.addEventListener('click', () => this.onAgain());
    this.set('connecting');
  }

  /** set shows one of connecting, live, reconnecting, crashed, ended. */
  set(state) {
    this.state.textContent = LABELS[state] || state;
    this.state.dataset.state = state;
    document.body.dataset.state = state;
  }

  /** crashed offers a fresh browser after a crash. */
  crashed(onRestart) {
    this.set('crashed');
    this.onRestart = onRestart;
    this.show('リモートブラウザが予期せず停止しました。 The remote browser stopped unexpectedly.', this.restart);
  }

  /**
   * endedText says in plain language why a session ended; for a reason
   * this viewer does not know, the server's message follows.
   */
  endedText(reason, message) {
    let text = ENDED[reason] || 'セッションが終了しました。 The session ended.';
    if (!ENDED[reason] && typeof message === 'string' && message !== '') {
      text += '\n' + message;
    }
    return text;
  }

  /** ended says why the session ended; the button starts over. */
  ended(reason, message, onAgain) {
    this.set('ended');
    this.onAgain = onAgain;
    this.again.textContent = reason === 'replaced' ? 'ここで再開 Start again here' : '再ログイン Log in again';
    this.show(this.endedText(reason, message), this.again);
  }

  /** closed says the server refused the stream (1007, 1008, 1009). */
  closed(reason, onAgain) {
    this.set('ended');
    this.onAgain = onAgain;
    const why = reason ? `\n(${reason})` : '';
    this.again.textContent = 'やり直す Start again';
    this.show('サーバーが接続を閉じました。 The server closed the connection.' + why, this.again);
  }

  show(text, button) {
    this.message.textContent = text;
    this.restart.hidden = button !== this.restart;
    this.again.hidden = button !== this.again;
    this.overlay.hidden = false;
    button.focus();
  }

  /** hideOverlay removes the crashed/ended overlay. */
  hideOverlay() {
    this.overlay.hidden = true;
  }

  /** toast shows text for ms milliseconds (a few seconds by default). */
  toast(text, ms = TOAST_MS) {
    if (typeof text !== 'string' || text === '') {
      return;
    }
    this.toastEl.textContent = text;
    this.toastEl.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      this.toastEl.hidden = true;
    }, ms);
  }
}

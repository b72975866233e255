// clipboard.js — copy, paste and print between the terminal and the remote
// page (docs/transfer.md). Text and pages cross only through the broker, which
// applies the profile's clipboard and print policy and records each one:
//
//   copy   {"type":"copy"}: the broker copies the page's selection and
//          answers {"type":"clipboard","text"}, which is written to the
//          terminal's clipboard;
//   paste  the terminal's text, after the warning in <dialog
//          id="paste-dialog"> (NOTICE-2), as {"type":"paste","text"};
//   print  {"type":"print"}: the page becomes a PDF that arrives as a
//          transfer in the files panel (transfers.js).
//
// The keys (Ctrl/Cmd+C, X, V, P) come from input.js while the remote page
// has focus; the toolbar buttons #copy and #print do the same.

import { fits } from './stream.js';
import { shortcut } from './input.js';

const PREVIEW_CHARS = 200;
const NOT_CONNECTED = '接続していません。 Not connected.';

/** editable reports whether el takes text itself (the address bar, a form). */
function editable(el) {
  return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement ||
    el instanceof HTMLSelectElement || (el instanceof HTMLElement && el.isContentEditable);
}

/** Clipboard drives copy, paste and print and <dialog id="paste-dialog">. */
export class Clipboard {
  /**
   * @param {object} o
   * @param {(msg: object) => boolean} o.send
   * @param {(text: string, ms?: number) => void} o.toast
   * @param {() => void} o.focusRemote gives keyboard focus back to the page
   * @param {() => boolean} o.shown whether the viewer is on screen
   */
  constructor({ send, toast, focusRemote, shown }) {
    this.send = send;
    this.toast = toast;
    this.focusRemote = focusRemote;
    this.shown = shown;
    this.pending = ''; // the text the open dialog asks about
    this.dontAsk = false; // the clinician chose "don't ask again" in this session
    const $ = (id) => document.getElementById(id);
    this.ime = $('ime');
    this.dlg = $('paste-dialog');
    this.form = $('paste-form');
    this.preview = $('paste-preview');
    this.length = $('paste-length');
    this.dontAskBox = $('paste-dont-ask');

    $('copy').addEventListener('click', () => {
      this.copy();
      this.focusRemote();
    });
    $('print').addEventListener('click', () => {
      this.print();
      this.focusRemote();
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.pending;
      this.dontAsk = this.dontAskBox.checked;
      this.close();
      this.sendPaste(text);
    });
    $('paste-cancel').addEventListener('click', () => this.close());
    this.dlg.addEventListener('close', () => {
      this.pending = '';
      this.preview.textContent = '';
      this.focusRemote();
    });

    // A paste while focus is on the viewer but not in the IME surface (a
    // toolbar button, the page body) is the clinician's paste too; one in
    // the address bar or a form of ours stays local.
    document.addEventListener('paste', (e) => {
      if (e.target === this.ime || editable(e.target) || !this.active()) {
        return;
      }
      e.preventDefault();
      this.paste(e.clipboardData ? e.clipboardData.getData('text/plain') : '');
    });
    // Ctrl/Cmd+P anywhere in the viewer prints the remote page, never this
    // tab (whose print would bypass the print policy); input.js handles it
    // on the IME surface.
    window.addEventListener('keydown', (e) => {
      if (e.target !== this.ime && this.shown() && shortcut(e) === 'print') {
        e.preventDefault();
        if (!e.repeat && this.active()) {
          this.print();
        }
      }
    });
  }

  // active says the viewer is on screen and none of its modal dialogs is
  // open.
  active() {
    return this.shown() && document.querySelector('#viewer dialog[open]') === null;
  }

  /** copy asks the broker for the remote page's selection. */
  copy() {
    if (!this.send({ type: 'copy' })) {
      this.toast(NOT_CONNECTED);
    }
  }

  /** print asks the broker for a PDF of the remote page. */
  print() {
    if (this.send({ type: 'print' })) {
      this.toast('印刷用の PDF を作成しています… ファイル一覧に届きます。 Making a PDF of the page; it will appear under Files.');
    } else {
      this.toast(NOT_CONNECTED);
    }
  }

  /** received writes the text of a `clipboard` message to the terminal's clipboard. */
  async received(m) {
    const text = typeof m.text === 'string' ? m.text : '';
    if (text === '') {
      this.toast('コピーする内容がありません。ページで文字を選択してください。 Nothing to copy: select text in the page first.');
      return;
    }
    if (!navigator.clipboard || typeof navigator.clipboard.writeText !== 'function') {
      this.toast('この端末のブラウザーはクリップボードへの書き込みを許可していません (HTTPS が必要です)。 This browser does not let the viewer write to the clipboard (it needs HTTPS).');
      return;
    }
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      const why = err && typeof err.message === 'string' && err.message !== '' ? `\n(${err.message})` : '';
      this.toast(`この端末のクリップボードに書き込めませんでした。 Could not write to this computer's clipboard.${why}`);
      return;
    }
    this.toast('コピーしました Copied');
  }

  /**
   * paste sends text from the terminal to the remote page, after the
   * warning unless the clinician chose not to be asked again.
   */
  paste(text) {
    if (typeof text !== 'string' || text === '') {
      this.toast('貼り付けるテキストがありません。 There is no text to paste.');
      return;
    }
    if (!fits({ type: 'paste', text })) {
      this.toast('一度に貼り付けるには長すぎます。 The text is too long to paste at once.');
      return;
    }
    if (this.dontAsk) {
      this.sendPaste(text);
      return;
    }
    this.pending = text;
    const chars = [...text];
    const shown = chars.slice(0, PREVIEW_CHARS).join('');
    this.preview.textContent = chars.length > PREVIEW_CHARS ? `${shown}…` : shown;
    this.length.textContent = chars.length > PREVIEW_CHARS
      ? `全 ${chars.length} 文字のうち先頭 ${PREVIEW_CHARS} 文字 The first ${PREVIEW_CHARS} of ${chars.length} characters`
      : `${chars.length} 文字 ${chars.length} characters`;
    this.dontAskBox.checked = false;
    if (!this.dlg.open) {
      this.dlg.showModal();
    }
    document.getElementById('paste-ok').focus();
  }

  sendPaste(text) {
    if (!this.send({ type: 'paste', text })) {
      this.toast(NOT_CONNECTED);
    }
  }

  /** close closes the paste dialog without pasting. */
  close() {
    if (this.dlg.open) {
      this.dlg.close();
    }
  }

  /** reset forgets "don't ask again": a new session asks again. */
  reset() {
    this.close();
    this.dontAsk = false;
  }
}

// upload.js — files for a page's file chooser (docs/transfer.md, XFER-7). When a
// page opens a file chooser the broker sends `fileChooser`. When policy
// refuses uploads to that page, a toast says why (the broker has closed the
// chooser already). Otherwise <dialog id="upload-dialog"> asks for the
// files, with the warning not to upload patient identifiers (NOTICE-2).
// Each file goes to POST /api/uploads/{id}, where the broker checks it
// (size, type, malware) before POST /api/uploads/{id}/answer hands the
// checked files to the page; cancel answers with none, which closes the
// page's chooser. Files dropped on the viewer while the dialog is open are
// taken as the chosen files. Files dropped on the remote screen otherwise
// are a drop on the page there: the viewer sends `drop` with the point, the
// broker answers with a `fileChooser` marked `drop` (or a refusal), and the
// same dialog, with the dropped files already chosen, sends them; the
// broker then drops the checked files on the page at that point. The
// terminal's browser never opens a dropped file itself.

import { request, errorText, UNREACHABLE } from './api.js';
import { el, str } from './dom.js';
import { formatSize } from './size.js';

const CLICK_FIRST = '画面の上にドロップしてください / Drop the files on the remote page';
const CANCELED = 'canceled';

/** Upload drives <dialog id="upload-dialog">. */
export class Upload {
  /**
   * @param {object} o
   * @param {(text: string, ms?: number) => void} o.toast
   * @param {() => void} o.focusRemote gives keyboard focus back to the page
   * @param {() => boolean} o.shown whether the viewer is on screen
   * @param {(msg: object) => boolean} o.send sends a message to the broker
   * @param {(clientX: number, clientY: number) => ({x: number, y: number} | null)} o.dropPoint
   *   the remote point under a client point, or null off the remote screen
   */
  constructor({ toast, focusRemote, shown, send, dropPoint }) {
    this.toast = toast;
    this.focusRemote = focusRemote;
    this.shown = shown;
    this.send = send;
    this.dropPoint = dropPoint;
    this.dropped = null; // files dropped on the page, waiting for the broker's answer
    this.chooser = null; // {id, host, url, multiple, accept, maxSize} being answered
    this.chosen = null; // dropped files when the file input cannot hold them
    this.sending = false;
    this.xhr = null; // the upload in flight
    const $ = (id) => document.getElementById(id);
    this.dlg = $('upload-dialog');
    this.form = $('upload-form');
    this.host = $('upload-host');
    this.url = $('upload-url');
    this.input = $('upload-file');
    this.files = $('upload-files');
    this.max = $('upload-max');
    this.progress = $('upload-progress');
    this.error = $('upload-error');
    this.sendButton = $('upload-send');

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    $('upload-cancel').addEventListener('click', () => this.cancel());
    // Escape cancels the chooser as the Cancel button does.
    this.dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      this.cancel();
    });
    this.dlg.addEventListener('close', () => this.focusRemote());
    this.input.addEventListener('change', () => {
      this.chosen = null;
      this.error.textContent = '';
      this.listFiles();
    });
    window.addEventListener('drop', (e) => {
      e.preventDefault(); // never let the terminal's browser open the file
      const files = e.dataTransfer ? e.dataTransfer.files : null;
      if (!files || files.length === 0) {
        return;
      }
      if (this.dlg.open && this.chooser && !this.sending) {
        this.take(files);
        return;
      }
      if (!this.shown() || this.dlg.open) {
        return;
      }
      const p = this.dropPoint(e.clientX, e.clientY);
      if (!p || !this.send({ type: 'drop', x: p.x, y: p.y })) {
        this.toast(CLICK_FIRST);
        return;
      }
      this.dropped = [...files];
    });
  }

  /** open shows a `fileChooser` message: the dialog, or why uploads are refused. */
  open(m) {
    const id = str(m.id);
    if (id === '') {
      return;
    }
    const host = str(m.host);
    const drop = m.drop === true;
    const dropped = this.dropped;
    if (drop) {
      this.dropped = null;
    }
    if (m.allowed !== true) {
      const reason = str(m.reason);
      this.toast(`${host || 'このページ'} にはファイルをアップロードできません。 Files cannot be uploaded to ${host || 'this page'}.` +
        (reason !== '' ? `\n${reason}` : ''), 10 * 1000);
      return;
    }
    if (this.chooser && this.chooser.id !== id) {
      // The page opened another chooser: the older one is given up.
      this.abort();
      this.answer(this.chooser.id, []).catch(() => {});
    }
    const maxSize = typeof m.maxSize === 'number' && m.maxSize > 0 ? m.maxSize : 0;
    this.chooser = { id, host, url: str(m.url), multiple: m.multiple === true, accept: str(m.accept), maxSize };
    this.chosen = null;
    this.host.textContent = host || str(m.url);
    this.url.textContent = str(m.url);
    this.url.hidden = str(m.url) === '';
    this.input.value = '';
    this.input.multiple = this.chooser.multiple;
    if (this.chooser.accept !== '') {
      this.input.accept = this.chooser.accept;
    } else {
      this.input.removeAttribute('accept');
    }
    this.max.textContent = maxSize > 0
      ? `1 ファイル ${formatSize(maxSize)} まで Up to ${formatSize(maxSize)} per file` +
        (this.chooser.multiple ? '' : ' · 1 ファイルのみ one file only')
      : (this.chooser.multiple ? '' : '1 ファイルのみ One file only');
    this.max.hidden = this.max.textContent === '';
    this.listFiles();
    this.resetProgress();
    this.error.textContent = '';
    this.setBusy(false);
    if (drop) {
      if (!dropped || dropped.length === 0) {
        // An answer to a drop this viewer no longer holds files for.
        this.chooser = null;
        this.answer(id, []).catch(() => {});
        return;
      }
      this.take(dropped);
    }
    if (!this.dlg.open) {
      this.dlg.showModal();
    }
    if (drop) {
      this.sendButton.focus();
    } else {
      this.input.focus();
    }
  }

  /** close closes the dialog without answering (the session ended). */
  close() {
    this.abort();
    this.chooser = null;
    this.chosen = null;
    if (this.dlg.open) {
      this.dlg.close();
    }
  }

  /** cancel gives up the chooser: the page is told no file was chosen. */
  cancel() {
    const c = this.chooser;
    this.close();
    if (c) {
      this.answer(c.id, []).catch(() => {
        // The chooser went away on its own (the page navigated): nothing to tell.
      });
    }
  }

  // take uses dropped files as the chosen files.
  take(files) {
    this.chosen = null;
    try {
      this.input.files = files;
    } catch {
      this.chosen = [...files];
    }
    if (!this.chosen && this.input.files.length !== files.length) {
      this.chosen = [...files];
    }
    this.error.textContent = '';
    this.listFiles();
  }

  selected() {
    return this.chosen || [...(this.input.files || [])];
  }

  // listFiles shows the chosen files with their sizes, marking those over
  // the limit.
  listFiles() {
    const max = this.chooser ? this.chooser.maxSize : 0;
    this.files.replaceChildren(...this.selected().map((f) => {
      const over = max > 0 && f.size > max;
      return el('li', { class: over ? 'over' : '' }, el('span', { class: 'file-name', text: f.name }),
        ` ${formatSize(f.size)}`, over ? el('span', { class: 'badge bad', text: '上限超過 too large' }) : null);
    }));
  }

  // problem returns what is wrong with the chosen files before sending, or "".
  problem(files) {
    const c = this.chooser;
    if (files.length === 0) {
      return 'ファイルを選んでください。 Choose a file.';
    }
    if (!c.multiple && files.length > 1) {
      return 'このページには 1 つのファイルしか送れません。 This page takes one file only.';
    }
    const big = c.maxSize > 0 ? files.find((f) => f.size > c.maxSize) : undefined;
    if (big) {
      return `「${big.name}」は ${formatSize(big.size)} で、上限 ${formatSize(c.maxSize)} を超えています。送れません。 ` +
        `"${big.name}" is ${formatSize(big.size)}, over the upload limit of ${formatSize(c.maxSize)}; it cannot be sent.`;
    }
    return '';
  }

  async submit() {
    const c = this.chooser;
    if (!c || this.sending) {
      return;
    }
    const files = this.selected();
    const why = this.problem(files);
    this.error.textContent = why;
    if (why !== '') {
      return;
    }
    this.setBusy(true);
    const total = files.reduce((n, f) => n + f.size, 0);
    this.progress.hidden = false;
    this.progress.max = Math.max(total, 1);
    this.progress.value = 0;
    const ids = [];
    let done = 0;
    try {
      for (const f of files) {
        const resp = await this.post(c.id, f, (loaded) => {
          this.progress.value = Math.min(done + loaded, this.progress.max);
        });
        if (resp.status !== 201) {
          throw new Error(`「${f.name}」: ` + errorText(resp, `送れませんでした (${resp.status})。 The file could not be uploaded.`));
        }
        const id = str(resp.data.id);
        if (id === '') {
          throw new Error(`「${f.name}」: サーバーの応答が不正です。 The server's answer has no transfer.`);
        }
        ids.push(id);
        done += f.size;
        this.progress.value = Math.min(done, this.progress.max);
      }
      await this.answer(c.id, ids);
    } catch (err) {
      if (this.chooser !== c) {
        return; // canceled or replaced meanwhile
      }
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== CANCELED) {
        this.error.textContent = msg;
      }
      this.setBusy(false);
      this.resetProgress();
      return;
    }
    if (this.chooser !== c) {
      return;
    }
    this.close();
    const names = files.map((f) => f.name).join(', ');
    this.toast(`${c.host} にファイルを渡しました: ${names} Uploaded to ${c.host}: ${names}`);
  }

  // answer tells the broker which checked files the page gets; it throws
  // an Error with the message to show.
  async answer(id, transfers) {
    let resp;
    try {
      resp = await request('POST', `/api/uploads/${encodeURIComponent(id)}/answer`, { transfers });
    } catch {
      throw new Error(UNREACHABLE);
    }
    if (resp.status < 200 || resp.status >= 300) {
      throw new Error(errorText(resp, `ページに渡せませんでした (${resp.status})。 The files could not be handed to the page.`));
    }
  }

  // post uploads one file with XMLHttpRequest, whose upload progress fetch
  // does not give, and resolves to {status, data}.
  post(id, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open('POST', `/api/uploads/${encodeURIComponent(id)}`);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.setRequestHeader('X-Shoji-Filename', encodeURIComponent(file.name));
      xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded));
      xhr.addEventListener('load', () => {
        this.xhr = null;
        let data = {};
        try {
          const parsed = JSON.parse(xhr.responseText);
          if (parsed && typeof parsed === 'object') {
            data = parsed;
          }
        } catch {
          // not JSON: keep the status only
        }
        resolve({ status: xhr.status, data });
      });
      xhr.addEventListener('error', () => {
        this.xhr = null;
        reject(new Error(UNREACHABLE));
      });
      xhr.addEventListener('abort', () => {
        this.xhr = null;
        reject(new Error(CANCELED));
      });
      xhr.send(file);
    });
  }

  abort() {
    if (this.xhr) {
      this.xhr.abort();
      this.xhr = null;
    }
  }

  setBusy(on) {
    this.sending = on;
    this.sendButton.disabled = on;
    this.input.disabled = on;
  }

  resetProgress() {
    this.progress.hidden = true;
    this.progress.value = 0;
  }
}

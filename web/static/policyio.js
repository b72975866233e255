// policyio.js — YAML export (a plain download link) and import of the
// whole policy on the admin page.

import { busy, confirmAction } from './dom.js';

/** PolicyIO drives #import-form. */
export class PolicyIO {
  /** @param {import('./policystore.js').PolicyStore} store */
  constructor(store) {
    this.store = store;
    this.form = document.getElementById('import-form');
    this.result = document.getElementById('import-result');
    this.error = document.getElementById('import-error');
    const f = this.form.elements;
    // A chosen file is read into the text area, so the admin sees what is
    // imported and can correct it.
    f.file.addEventListener('change', async () => {
      const file = f.file.files && f.file.files[0];
      if (!file) {
        return;
      }
      this.error.textContent = '';
      try {
        f.yaml.value = await file.text();
      } catch {
        this.error.textContent = 'ファイルを読めません。 Cannot read the file.';
      }
    });
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.import();
    });
  }

  async import() {
    const f = this.form.elements;
    this.error.textContent = '';
    this.result.textContent = '';
    const yaml = f.yaml.value;
    if (yaml.trim() === '') {
      this.error.textContent = 'YAML を貼り付けるかファイルを選んでください。 Paste YAML or choose a file.';
      return;
    }
    if (!await confirmAction('ポリシー全体をこの YAML で置き換えますか? Replace the whole policy with this YAML?', '取り込む Import')) {
      return;
    }
    const err = await busy(this.form, () => this.store.importYAML(yaml));
    if (err !== '') {
      this.error.textContent = err;
      return;
    }
    this.result.textContent = `取り込みました (版 ${this.store.version})。 Imported (version ${this.store.version}).`;
  }
}

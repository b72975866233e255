// groups.js — terminal groups on the admin page: a name and the address
// ranges (CIDR) of its terminals. Renaming a group renames it in the
// profiles and emergency profiles that use it.

import { el, busy, confirmAction } from './dom.js';

/** Groups drives the terminal groups section. */
export class Groups {
  /** @param {import('./policystore.js').PolicyStore} store */
  constructor(store) {
    this.store = store;
    this.editing = null; // name of the group in the form, or null for a new one
    const $ = (id) => document.getElementById(id);
    this.table = $('groups');
    this.form = $('group-form');
    this.title = $('group-form-title');
    this.submit = $('group-submit');
    this.cancel = $('group-cancel');
    this.result = $('group-result');
    this.error = $('group-error');

    store.subscribe((doc) => this.render(doc));
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.save();
    });
    this.cancel.addEventListener('click', () => this.reset());
    this.table.addEventListener('click', (ev) => {
      const edit = ev.target.closest('[data-edit-group]');
      const del = ev.target.closest('[data-delete-group]');
      if (edit) {
        this.edit(edit.dataset.editGroup);
      } else if (del) {
        this.remove(del.dataset.deleteGroup);
      }
    });
  }

  render(doc) {
    const body = this.table.tBodies[0];
    body.replaceChildren();
    for (const g of doc.groups) {
      const users = doc.profiles.filter((p) => p.groups.includes(g.name)).map((p) => p.name);
      body.append(el('tr', { data: { group: g.name } },
        el('td', { text: g.name }),
        el('td', {}, ...g.terminals.flatMap((c, i) => (i ? [el('br'), el('code', { text: c })] : [el('code', { text: c })]))),
        el('td', { text: users.join(', ') }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', data: { editGroup: g.name }, text: '編集 Edit' }),
          el('button', { type: 'button', class: 'danger', data: { deleteGroup: g.name }, text: '削除 Delete' }))));
    }
    if (doc.groups.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: 4, class: 'muted', text: '端末グループはありません。 No terminal groups.' })));
    }
  }

  reset() {
    this.editing = null;
    this.form.reset();
    this.error.textContent = '';
    this.title.textContent = 'グループを追加 Add a group';
    this.submit.textContent = '追加 Add group';
    this.cancel.hidden = true;
  }

  edit(name) {
    const g = this.store.doc && this.store.doc.groups.find((x) => x.name === name);
    if (!g) {
      return;
    }
    this.editing = name;
    this.form.elements.name.value = g.name;
    this.form.elements.terminals.value = g.terminals.join('\n');
    this.error.textContent = '';
    this.result.textContent = '';
    this.title.textContent = `グループを編集 Edit group: ${name}`;
    this.submit.textContent = '更新 Update group';
    this.cancel.hidden = false;
    this.form.elements.name.focus();
  }

  async save() {
    const f = this.form.elements;
    this.error.textContent = '';
    this.result.textContent = '';
    const name = f.name.value.trim();
    const terminals = f.terminals.value.split(/[\s,]+/).filter((s) => s !== '');
    if (name === '') {
      this.error.textContent = '名前を入力してください。 Enter a name.';
      return;
    }
    const old = this.editing;
    const err = await busy(this.form, () => this.store.save((doc) => {
      if (name !== old && doc.groups.some((g) => g.name === name)) {
        return `グループ「${name}」は既にあります。 A group named "${name}" already exists.`;
      }
      if (old === null) {
        doc.groups.push({ name, terminals });
        return '';
      }
      const g = doc.groups.find((x) => x.name === old);
      if (!g) {
        return `グループ「${old}」はもうありません。 Group "${old}" no longer exists.`;
      }
      g.name = name;
      g.terminals = terminals;
      if (name !== old) {
        for (const p of doc.profiles) {
          p.groups = p.groups.map((x) => (x === old ? name : x));
        }
        for (const em of doc.emergencies) {
          if (em.group === old) {
            em.group = name;
          }
        }
      }
      return '';
    }));
    if (err !== '') {
      this.error.textContent = err;
      return;
    }
    this.reset();
    this.result.textContent = `グループ「${name}」を保存しました。 Group "${name}" saved.`;
  }

  async remove(name) {
    this.error.textContent = '';
    this.result.textContent = '';
    if (!await confirmAction(`グループ「${name}」を削除しますか? プロファイルからも外れます。 Delete group "${name}"? It is also removed from the profiles.`, '削除 Delete')) {
      return;
    }
    const err = await this.store.save((doc) => {
      const i = doc.groups.findIndex((g) => g.name === name);
      if (i < 0) {
        return `グループ「${name}」はもうありません。 Group "${name}" no longer exists.`;
      }
      doc.groups.splice(i, 1);
      for (const p of doc.profiles) {
        p.groups = p.groups.filter((x) => x !== name);
      }
      return '';
    });
    if (err !== '') {
      this.error.textContent = err;
      return;
    }
    if (this.editing === name) {
      this.reset();
    }
    this.result.textContent = `グループ「${name}」を削除しました。 Group "${name}" deleted.`;
  }
}

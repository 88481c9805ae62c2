/* Spaceport console: shared helpers, the live Spaces list, and the small forms
   (new Space, tokens, users). Hand-written, no framework, no CDN. Every action is a call to
   the public HTTP API with the session cookie and the page's CSRF token. */
(() => {
  'use strict';
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const groups = JSON.parse(document.body.dataset.stageGroups || '{}');

  async function api(method, url, body) {
    const headers = { Accept: 'application/json', 'X-CSRF-Token': csrf };
    const opts = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    const text = await r.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* plain text answer */ }
    if (!r.ok) {
      const msg = r.status === 401 ? 'Your session has ended: sign in again.'
        : (data && data.error) || r.headers.get('X-Error-Message') || `${r.status} ${r.statusText}`;
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function toast(message, kind = '') {
    const box = document.getElementById('toasts');
    if (!box) return;
    const el = document.createElement('div');
    el.className = `toast ${kind}`;
    el.textContent = message;
    box.appendChild(el);
    setTimeout(() => el.remove(), kind === 'err' ? 9000 : 4500);
  }

  function ago(iso) {
    if (!iso) return 'never';
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return 'just now';
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function refreshTimes(root = document) {
    root.querySelectorAll('time[data-rel]').forEach((t) => { t.textContent = ago(t.getAttribute('datetime')); });
  }
  setInterval(refreshTimes, 20000);

  /* A stage's human label (stages.py's LABELS, sent in the page's data-stage-groups). */
  const label = (stage) => (groups[stage] ? groups[stage][1] : stage);

  function setBadge(el, stage) {
    const [group] = groups[stage] || ['idle'];
    el.className = `badge g-${group}`;
    el.textContent = label(stage);
    el.title = stage;
    el.dataset.stage = stage;
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
  }

  document.addEventListener('click', async (e) => {
    const btn = e.target.closest('[data-copy]');
    if (!btn) return;
    e.preventDefault();
    const src = document.querySelector(btn.dataset.copy);
    if (!src) return;
    await copyText(src.textContent.trim());
    const before = btn.textContent;
    btn.textContent = 'Copied';
    setTimeout(() => { btn.textContent = before; }, 1500);
  });

  function formData(form) {
    const out = {};
    new FormData(form).forEach((v, k) => { out[k] = typeof v === 'string' ? v.trim() : v; });
    form.querySelectorAll('input[type=checkbox][name]').forEach((c) => { out[c.name] = c.checked; });
    return out;
  }

  /* Radio cards (SDK, flavor): highlight the checked one. */
  document.addEventListener('change', (e) => {
    const input = e.target;
    if (input.type !== 'radio') return;
    const card = input.closest('.sdk, .flavor');
    if (!card) return;
    document.querySelectorAll(`input[name="${input.name}"]`).forEach((r) => {
      const c = r.closest('.sdk, .flavor');
      if (c) c.classList.toggle('on', r.checked);
    });
  });

  /* Space avatars: the README's emoji only where a font here draws it; many servers and
     minimal desktops have no emoji font and would show an empty box, so the initial stays. */
  const JOINERS = /[\u200d\ufe0e\ufe0f\u20e3]|[\u{1f3fb}-\u{1f3ff}]|[\u{e0020}-\u{e007f}]/u;
  let missingGlyph = null;
  function glyphPixels(text) {
    const canvas = document.createElement('canvas');
    canvas.width = 48;
    canvas.height = 48;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.textBaseline = 'middle';
    g.textAlign = 'center';
    g.font = '32px sans-serif';
    g.fillStyle = '#000';
    g.fillText(text, 24, 24);
    return g.getImageData(0, 0, 48, 48).data;
  }
  const blank = (px) => !px.some((v, i) => i % 4 === 3 && v !== 0);
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  function drawable(text) {
    try {
      // U+10FFFD (private use, plane 16) is in no font: what this browser draws for a missing glyph.
      missingGlyph = missingGlyph || glyphPixels('\u{10FFFD}');
      const chars = [...text].filter((ch) => !JOINERS.test(ch));
      return chars.length > 0 && chars.every((ch) => {
        const px = glyphPixels(ch);
        return !blank(px) && !same(px, missingGlyph);
      });
    } catch (_) {
      return false;
    }
  }
  function avatars(root = document) {
    root.querySelectorAll('.space-avatar[data-emoji]:not(.has-emoji)').forEach((el) => {
      const emoji = el.dataset.emoji;
      if (emoji && drawable(emoji)) {
        el.textContent = emoji;
        el.classList.add('has-emoji');
      }
    });
  }
  avatars();

  window.Spaceport = { api, toast, ago, refreshTimes, setBadge, label, groups, formData, copyText, avatars };

  /* ---- The Spaces list: filters, and badges that follow each Space's stage. ---- */
  const cards = document.getElementById('cards');
  if (cards) {
    const search = document.getElementById('search');
    const owner = document.getElementById('owner');
    const stageInput = document.getElementById('stage');
    const seg = document.getElementById('stage-filter');

    // More Spaces than one page: the server filters and pages (the cards here are one page).
    const paged = cards.dataset.paged === '1';
    const filterParams = () => {
      const params = new URLSearchParams();
      if (search.value.trim()) params.set('q', search.value.trim());
      if (stageInput.value) params.set('stage', stageInput.value);
      if (owner.value) params.set('owner', owner.value);
      const limit = new URLSearchParams(location.search).get('limit');
      if (limit) params.set('limit', limit);
      return params;
    };
    const apply = () => {
      const q = search.value.trim().toLowerCase();
      const st = stageInput.value;
      const ow = owner.value;
      if (paged) {
        const params = filterParams();
        const current = new URLSearchParams(location.search);
        current.delete('offset');
        if (params.toString() !== current.toString()) location.assign(`/?${params}`);
        return;
      }
      let shown = 0;
      cards.querySelectorAll('.card').forEach((c) => {
        const ok = (!q || c.dataset.search.includes(q))
          && (!st || c.dataset.group === st || c.dataset.stage === st)
          && (!ow || c.dataset.owner === ow);
        c.classList.toggle('hidden', !ok);
        if (ok) shown += 1;
      });
      document.getElementById('no-match').classList.toggle('hidden', shown > 0);
      const params = filterParams();
      history.replaceState(null, '', params.toString() ? `/?${params}` : '/');
    };
    let timer;
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(apply, paged ? 500 : 120); });
    if (paged && search.value) {  // back from the server's search: typing goes on
      search.focus();
      search.setSelectionRange(search.value.length, search.value.length);
    }
    owner.addEventListener('change', apply);
    seg.addEventListener('click', (e) => {
      const b = e.target.closest('button');
      if (!b) return;
      seg.querySelectorAll('button').forEach((x) => x.classList.toggle('on', x === b));
      stageInput.value = b.dataset.value;
      apply();
    });
    document.getElementById('filters').addEventListener('submit', (e) => { e.preventDefault(); apply(); });

    const follow = (s) => {  // one card follows its Space
      const card = cards.querySelector(`.card[data-space="${CSS.escape(s.id)}"]`);
      if (!card) return;
      if (card.dataset.stage !== s.stage) {
        card.dataset.stage = s.stage;
        card.dataset.group = s.stageGroup;
        setBadge(card.querySelector('[data-role=stage]'), s.stage);
      }
      const hw = card.querySelector('[data-role=hardware]');
      if (hw) hw.textContent = s.hardware.current || s.hardware.requested;
      const built = s.lastBuild && (s.lastBuild.finishedAt || s.lastBuild.createdAt);
      const t = card.querySelector('[data-role=built] time');
      if (built && t) t.setAttribute('datetime', built);
    };
    const update = (list) => {
      list.forEach(follow);
      refreshTimes(cards);
      if (paged) return;  // one page: counts and new Spaces are the server's, on the next load
      const counts = { all: list.length, ok: 0, busy: 0, error: 0, idle: 0 };
      list.forEach((s) => { counts[s.stageGroup] = (counts[s.stageGroup] || 0) + 1; });
      const fresh = list.filter((s) => !cards.querySelector(`.card[data-space="${CSS.escape(s.id)}"]`)).length;
      const note = document.getElementById('new-spaces');
      if (note) {
        note.classList.toggle('hidden', fresh === 0);
        note.querySelector('span').textContent = `${fresh} new Space${fresh === 1 ? '' : 's'}`;
      }
      Object.entries(counts).forEach(([k, n]) => {
        const el = seg.querySelector(`[data-count="${k}"]`);
        if (el) el.textContent = n;
      });
      apply();
    };
    const poll = async () => {
      let url = '/api/v1/spaces';
      if (paged) {
        const params = filterParams();
        params.delete('q');
        if (search.value.trim()) params.set('search', search.value.trim());
        params.set('offset', cards.dataset.offset);
        params.set('limit', cards.dataset.limit);
        url += `?${params}`;
      }
      try { update(await api('GET', url)); } catch (_) { /* next round */ }
    };
    setInterval(() => { if (!document.hidden) poll(); }, 3000);
  }

  /* ---- Create a Space. ---- */
  const newSpace = document.getElementById('new-space');
  if (newSpace) {
    newSpace.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(newSpace);
      const body = { type: 'space', name: f.name, sdk: f.sdk, private: f.private, hardware: f.hardware };
      if (f.owner && f.owner !== newSpace.dataset.me) body.organization = f.owner;
      const button = document.getElementById('create');
      button.disabled = true;
      try {
        const out = await api('POST', '/api/repos/create', body);
        const id = out.name || `${f.owner}/${f.name}`;
        document.getElementById('created-id').textContent = id;
        document.getElementById('created-clone').textContent = `git clone ${out.url}\ncd ${f.name}`;
        document.getElementById('created-link').href = `/spaces/${id}`;
        document.getElementById('created').classList.remove('hidden');
        toast(`Created ${id}`, 'ok');
      } catch (err) {
        toast(err.message, 'err');
      } finally {
        button.disabled = false;
      }
    });
  }

  /* ---- Access tokens. ---- */
  const newToken = document.getElementById('new-token');
  if (newToken) {
    newToken.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const f = formData(newToken);
        const body = { name: f.name, role: f.role };
        const scope = (f.scope || '').split(',').map((v) => v.trim()).filter(Boolean);
        if (scope.length) body.scope = scope;
        if (f.expiresInDays) body.expiresInDays = Number(f.expiresInDays);
        const t = await api('POST', '/api/v1/tokens', body);
        document.getElementById('token-value').textContent = t.token;
        document.getElementById('token-shown').classList.remove('hidden');
        const tbody = document.querySelector('#tokens-table tbody');
        const none = tbody.querySelector('tr.none');
        if (none) none.remove();
        const tr = document.createElement('tr');
        tr.dataset.token = t.id;
        tr.innerHTML = '<td><strong></strong></td><td><span class="chip"></span></td><td class="small" data-col="scope"></td><td class="small muted">just now</td><td class="small muted" data-col="expires"></td><td class="small muted">never</td><td class="actions"><button class="btn small danger">Revoke</button></td>';
        tr.querySelector('strong').textContent = t.name;
        tr.querySelector('.chip').textContent = t.role;
        tr.querySelector('[data-col=scope]').textContent = t.scope ? t.scope.join(', ') : 'all you can reach';
        tr.querySelector('[data-col=expires]').textContent = t.expiresAt ? `${t.expiresAt.slice(0, 16).replace('T', ' ')} UTC` : 'never';
        const b = tr.querySelector('button');
        b.dataset.revoke = t.id;
        b.dataset.name = t.name;
        tbody.appendChild(tr);
        newToken.reset();
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }
  document.addEventListener('click', async (e) => {
    const b = e.target.closest('[data-revoke]');
    if (!b) return;
    if (!window.confirm(`Revoke "${b.dataset.name}"? Anything using it stops working at once.`)) return;
    try {
      await api('DELETE', `/api/v1/tokens/${b.dataset.revoke}`);
      b.closest('tr').remove();
      toast(`Revoked ${b.dataset.name}`, 'ok');
    } catch (err) {
      toast(err.message, 'err');
    }
  });

  /* ---- Users (administrators). ---- */
  const newUser = document.getElementById('new-user');
  if (newUser) {
    newUser.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(newUser);
      try {
        const u = await api('POST', '/api/v1/users', { name: f.name, fullname: f.fullname || null, admin: f.admin });
        document.getElementById('user-created').textContent = u.name;
        document.getElementById('user-token').textContent = u.token;
        document.getElementById('user-shown').classList.remove('hidden');
        const tr = document.createElement('tr');
        tr.dataset.user = u.name;
        tr.innerHTML = '<td><div class="row"><span class="avatar"></span><strong></strong></div></td><td><span class="chip"></span></td><td>0</td><td class="small muted">just now</td>';
        tr.querySelector('.avatar').textContent = u.name[0].toUpperCase();
        tr.querySelector('strong').textContent = u.name;
        tr.querySelector('.chip').textContent = u.isAdmin ? 'admin' : 'user';
        document.querySelector('#users-table tbody').appendChild(tr);
        newUser.reset();
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }

  /* ---- Invitation links, deactivate / activate / delete users (administrators). ---- */
  const newInvite = document.getElementById('new-invitation');
  if (newInvite) {
    newInvite.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(newInvite);
      const body = {};
      if (f.org) { body.org = f.org; body.role = f.role; }
      if (f.days) body.days = Number(f.days);
      try {
        const inv = await api('POST', '/api/v1/invitations', body);
        document.getElementById('invite-url').textContent = inv.url;
        document.getElementById('invite-until').textContent = `${inv.expiresAt.slice(0, 16).replace('T', ' ')} UTC`;
        document.getElementById('invite-shown').classList.remove('hidden');
        newInvite.reset();
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }
  document.addEventListener('click', async (e) => {
    const b = e.target.closest('[data-user-action]');
    if (!b) return;
    const { userAction: action, name } = b.dataset;
    if (action === 'deactivate' && !window.confirm(`Deactivate ${name}? Their tokens, console sessions and app sign-ins stop at once; their Spaces keep running.`)) return;
    try {
      await api('POST', `/api/v1/users/${encodeURIComponent(name)}/${action}`);
      toast(`${name} ${action}d`, 'ok');
      setTimeout(() => location.reload(), 500);
    } catch (err) {
      toast(err.message, 'err');
    }
  });
  document.addEventListener('click', async (e) => {
    const b = e.target.closest('[data-uninvite]');
    if (!b) return;
    try {
      await api('DELETE', `/api/v1/invitations/${b.dataset.uninvite}`);
      b.closest('tr').remove();
      toast('Invitation revoked: its link no longer works', 'ok');
    } catch (err) {
      toast(err.message, 'err');
    }
  });
  const userDelete = document.getElementById('user-delete-dialog');
  if (userDelete) {
    let target = '';
    document.addEventListener('click', (e) => {
      const b = e.target.closest('[data-user-delete]');
      if (!b) return;
      target = b.dataset.userDelete;
      document.getElementById('user-delete-name').textContent = target;
      document.getElementById('user-delete-count').textContent = b.dataset.spaces;
      userDelete.querySelectorAll('input[type=text]').forEach((i) => { i.value = ''; });
      userDelete.showModal();
    });
    userDelete.addEventListener('close', async () => {
      if (userDelete.returnValue !== 'delete' || !target) return;
      const fate = userDelete.querySelector('input[name=fate]:checked').value;
      const params = new URLSearchParams();
      if (fate === 'transfer') {
        const to = document.getElementById('user-delete-to').value.trim();
        if (to) params.set('transferTo', to);
      } else {
        params.set('deleteSpaces', document.getElementById('user-delete-confirm').value.trim());
      }
      try {
        const out = await api('DELETE', `/api/v1/users/${encodeURIComponent(target)}?${params}`);
        const moved = Object.keys(out.moved).length;
        toast(`${target} deleted${moved ? `; ${moved} Space(s) moved` : ''}${out.deletedSpaces.length ? `; ${out.deletedSpaces.length} Space(s) deleted` : ''}`, 'ok');
        const row = document.querySelector(`#users-table tr[data-user="${CSS.escape(target)}"]`);
        if (row) row.remove();
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }
})();

/* A Space's page: live stage (polled), the app frame, streamed build and run logs, the
   read-only files, settings and actions. Everything goes through the public HTTP API. */
(() => {
  'use strict';
  const { api, toast, setBadge, refreshTimes, formData, label } = window.Spaceport;
  const data = JSON.parse(document.getElementById('space-data').textContent);
  const $ = (sel) => document.querySelector(sel);
  let s = data.space;
  const id = s.id;
  const [owner, name] = id.split('/');
  const hf = `/api/spaces/${id}`;
  const SERVING = new Set(['RUNNING', 'RUNNING_BUILDING', 'RUNNING_APP_STARTING']);
  const RESUMABLE = new Set(['PAUSED', 'STOPPED', 'SLEEPING', 'RUNTIME_ERROR']);

  /* ---- Tabs (the URL hash names the tab, so a link can open the build log). ---- */
  const started = {};
  function showTab() {
    const tab = (location.hash || '#app').slice(1);
    const known = document.querySelector(`[data-panel="${tab}"]`) ? tab : 'app';
    document.querySelectorAll('[data-panel]').forEach((p) => p.classList.toggle('hidden', p.dataset.panel !== known));
    document.querySelectorAll('#tabs a').forEach((a) => a.classList.toggle('on', a.dataset.tab === known));
    if (known === 'build' && !started.build) { started.build = true; buildLog.start(); }
    if (known === 'run' && !started.run) { started.run = true; runLog.start(); }
    if (known === 'files' && !started.files) { started.files = true; openDefaultFile(); }
  }
  window.addEventListener('hashchange', showTab);

  /* ---- Logs: server-sent events read with fetch, so a finished stream stays finished. ---- */
  const ERR = /\b(error|failed|failure|exception|traceback|fatal|no solution|not found|denied)\b/i;
  const STEP = /^(#\d+ \[|step \d+|-->|==>|\[\d+\/\d+\])/i;
  class LogStream {
    constructor(url, view, live, follow, reconnect) {
      Object.assign(this, { url, view, live, follow, reconnect, ctrl: null, lines: 0 });
    }
    setLive(text, on) { this.live.textContent = text; this.live.classList.toggle('off', !on); }
    start() {
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = new AbortController();
      this.run(this.ctrl);
    }
    async run(ctrl) {
      this.setLive('connecting', false);
      let ended = 'ended';
      try {
        const r = await fetch(this.url, { signal: ctrl.signal, headers: { Accept: 'text/event-stream' }, credentials: 'same-origin' });
        if (!r.ok) {
          this.placeholder(r.status === 404 ? 'Not available yet.' : `Could not open the log (${r.status}).`);
          ended = 'unavailable';
        } else {
          this.view.innerHTML = '';
          this.lines = 0;
          this.setLive('live', true);
          await this.read(r.body.getReader());
          if (!this.lines) this.placeholder('No output.');
        }
      } catch (err) {
        if (ctrl.signal.aborted) return;
        ended = 'disconnected';
      }
      if (ctrl !== this.ctrl) return;
      this.setLive(ended, false);
      if (this.reconnect) setTimeout(() => { if (ctrl === this.ctrl) this.start(); }, 2500);
    }
    async read(reader) {
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        const keep = buf.endsWith('\r') ? '\r' : '';
        buf = buf.slice(0, buf.length - keep.length).replace(/\r\n?/g, '\n') + keep;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.event(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    }
    event(chunk) {
      const payload = chunk.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!payload) return;
      let ev;
      try { ev = JSON.parse(payload); } catch (_) { ev = { data: payload }; }
      this.append(ev.timestamp, (typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data)).replace(/\r?\n$/, ''));
    }
    append(ts, text) {
      const ln = document.createElement('div');
      ln.className = 'ln';
      if (ERR.test(text)) ln.classList.add('err');
      else if (STEP.test(text)) ln.classList.add('step');
      const t = document.createElement('span');
      t.className = 'ts';
      t.textContent = ts ? new Date(ts).toLocaleTimeString([], { hour12: false }) : '';
      const body = document.createElement('span');
      body.textContent = text;
      ln.append(t, body);
      this.view.appendChild(ln);
      this.lines += 1;
      if (this.lines > 5000) this.view.firstChild.remove();
      if (this.follow.checked) this.view.scrollTop = this.view.scrollHeight;
    }
    placeholder(text) {
      this.view.innerHTML = '';
      const p = document.createElement('div');
      p.className = 'placeholder';
      p.textContent = text;
      this.view.appendChild(p);
    }
  }
  const buildLog = new LogStream(`${hf}/logs/build`, $('#build-log'), $('#build-live'), $('#build-follow'), false);
  const runLog = new LogStream(`${hf}/logs/run`, $('#run-log'), $('#run-live'), $('#run-follow'), true);
  function buildTitle() {
    const b = s.lastBuild;
    $('#build-title').textContent = b ? `Build #${b.id} · ${b.sha.slice(0, 12)} · ${b.status}` : 'No build yet';
  }
  buildTitle();

  /* ---- Files at HEAD. ---- */
  async function openFile(path) {
    document.querySelectorAll('#file-tree a').forEach((a) => a.classList.toggle('on', a.dataset.file === path));
    $('#file-path').textContent = path;
    const code = $('#file-code');
    code.textContent = '';
    try {
      const r = await fetch(`/api/v1/spaces/${id}/files/${path.split('/').map(encodeURIComponent).join('/')}`, { credentials: 'same-origin' });
      const text = await r.text();
      if (!r.ok) {
        let msg = text;
        try { msg = JSON.parse(text).error; } catch (_) { /* text */ }
        code.textContent = msg;
        return;
      }
      const frag = document.createDocumentFragment();
      text.replace(/\n$/, '').split('\n').forEach((line) => {
        const span = document.createElement('span');
        span.textContent = line;
        frag.appendChild(span);
      });
      code.appendChild(frag);
    } catch (err) {
      code.textContent = err.message;
    }
  }
  function openDefaultFile() {
    const links = [...document.querySelectorAll('#file-tree a')];
    const first = links.find((a) => a.dataset.file === 'app.py') || links.find((a) => a.dataset.file === 'README.md') || links[0];
    if (first) openFile(first.dataset.file);
  }
  const tree = $('#file-tree');
  if (tree) tree.addEventListener('click', (e) => {
    const a = e.target.closest('a[data-file]');
    if (!a) return;
    e.preventDefault();
    openFile(a.dataset.file);
  });

  /* ---- Live state. ---- */
  const frame = $('#app-frame');
  const timeline = $('#timeline');
  let frameContainer = null;
  function addTimeline(stage) {
    const li = document.createElement('li');
    const t = document.createElement('time');
    t.textContent = new Date().toLocaleTimeString([], { hour12: false });
    const b = document.createElement('span');
    setBadge(b, stage);
    li.append(t, b);
    li.dataset.stage = stage;
    timeline.prepend(li);
    while (timeline.children.length > 30) timeline.lastChild.remove();
  }
  function kv(key, value) {
    const el = document.querySelector(`#runtime [data-k="${key}"]`);
    if (el) el.textContent = value;
  }
  function render(prev) {
    const stageChanged = !prev || prev.stage !== s.stage;
    if (stageChanged) {
      setBadge($('#stage-badge'), s.stage);
      addTimeline(s.stage);
    }
    const serving = SERVING.has(s.stage) && !!s.container;
    const cid = s.container ? s.container.id : null;
    kv('stage', label(s.stage));
    document.querySelector('#runtime [data-k="stage"]').title = s.stage;
    kv('container', cid || '—');
    kv('node', (s.container && s.container.node) || '—');  // cluster mode: it may move
    kv('sha', (s.sha || '—').slice(0, 12));
    kv('hardware', s.hardware.current || s.hardware.requested);
    kv('sleep', s.sleepTime && s.sleepTime > 0 ? `after ${Math.round(s.sleepTime / 60)} min idle` : 'never');
    const b = s.lastBuild;
    const bEl = document.querySelector('#runtime [data-k="build"]');
    if (bEl) bEl.innerHTML = b ? `${b.status} · <time data-rel datetime="${b.finishedAt || b.createdAt}"></time>` : '—';
    refreshTimes($('#runtime'));
    $('#hw-chip [data-k="hardware"]').textContent = s.hardware.current || s.hardware.requested;
    $('#private-chip').classList.toggle('hidden', !s.private);

    // The app when it serves; otherwise what is happening and what went wrong.
    frame.classList.toggle('hidden', !serving);
    $('#status-box').classList.toggle('hidden', serving);
    if (serving && cid !== frameContainer) {
      // The database names the new container a moment before the proxy routes to it.
      const first = frameContainer === null && !prev;
      frameContainer = cid;
      setTimeout(() => { if (frameContainer === cid) frame.src = s.appUrl; }, first ? 0 : 2000);
    }
    if (!serving) frameContainer = null;
    $('#status-title').textContent = label(s.stage);
    const msg = $('#status-message');
    msg.textContent = '';
    if (s.stageGroup === 'busy') {
      const sp = document.createElement('span');
      sp.className = 'spinner';
      msg.append(sp, ' ');
    }
    msg.append(s.message || '');
    const errBox = $('#status-error');
    errBox.textContent = s.errorMessage || '';
    errBox.classList.toggle('hidden', !s.errorMessage);
    $('#first-push').classList.toggle('hidden', s.stage !== 'NO_APP_FILE');
    $('#wake-row').classList.toggle('hidden', s.stage !== 'SLEEPING');
    let note = $('#serving-note');
    if (serving && s.errorMessage) {
      if (!note) {
        note = document.createElement('div');
        note.id = 'serving-note';
        note.className = 'alert err';
        note.style.margin = '12px';
        $('#app-panel').prepend(note);
      }
      note.textContent = `The previous version keeps serving. ${s.errorMessage.split('\n')[0]}`;
    } else if (note) {
      note.remove();
    }
    const pause = $('#btn-pause');
    if (pause) {
      // Running: Pause and Stop. Paused, asleep or crashed: Resume. Stopped: Start.
      const held = RESUMABLE.has(s.stage) || s.desired === 'paused' || s.desired === 'stopped';
      const stopped = s.stage === 'STOPPED' || s.desired === 'stopped';
      pause.classList.toggle('hidden', held);
      $('#btn-stop').classList.toggle('hidden', held);
      $('#btn-resume').classList.toggle('hidden', !held || stopped);
      $('#btn-start').classList.toggle('hidden', !stopped);
    }
    if (prev && prev.lastBuild && b && prev.lastBuild.id !== b.id && started.build) buildLog.start();
    if (!prev || JSON.stringify(prev.lastBuild) !== JSON.stringify(b)) buildTitle();
  }
  async function poll() {
    try {
      const next = await api('GET', `/api/v1/spaces/${id}`);
      const prev = s;
      s = next;
      render(prev);
      $('#live-dot').textContent = 'live';
    } catch (err) {
      $('#live-dot').textContent = err.status === 404 ? 'deleted' : 'offline';
    }
  }
  setInterval(() => { if (!document.hidden) poll(); }, 1000);
  render(null);
  showTab();

  /* ---- Actions. ---- */
  const ACTIONS = {
    restart: { url: `${hf}/restart`, done: 'Restarting: a new container starts, then takes over.' },
    factory: { url: `${hf}/restart?factory=true`, done: 'Rebuilding from scratch (no cache), then restarting.', confirm: 'Rebuild the image without any cache, then restart? This takes longer than a restart.' },
    pause: { url: `${hf}/pause`, done: 'Paused: visitors will not wake it until you resume it.' },
    resume: { url: `${hf}/restart`, done: 'Resuming.' },
    stop: { url: `/api/v1/spaces/${id}/stop`, done: 'Stopped: it stays off until you start it.' },
    start: { url: `/api/v1/spaces/${id}/start`, done: 'Starting.' },
  };
  document.querySelectorAll('[data-action]').forEach((btn) => btn.addEventListener('click', async () => {
    const a = ACTIONS[btn.dataset.action];
    if (a.confirm && !window.confirm(a.confirm)) return;
    btn.disabled = true;
    try {
      await api('POST', a.url);
      toast(a.done, 'ok');
      poll();
    } catch (err) {
      toast(err.message, 'err');
    } finally {
      btn.disabled = false;
    }
  }));
  const wake = $('#wake');
  if (wake) {
    wake.addEventListener('click', async () => {
      try {
        await api('POST', `/api/v1/spaces/${id}/wake`);
        toast('Waking up: the app shows here once it answers.', 'ok');
        poll();
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }

  /* ---- Settings: each change goes to the API; the page then shows the restart live. ---- */
  async function change(method, url, body, message) {
    try {
      await api(method, url, body);
      toast(message, 'ok');
      poll();
      return true;
    } catch (err) {
      toast(err.message, 'err');
      return false;
    }
  }
  const on = (sel, ev, fn) => { const el = document.querySelector(sel); if (el) el.addEventListener(ev, fn); };
  on('[data-form="hardware"]', 'submit', (e) => {
    e.preventDefault();
    const flavor = formData(e.target).flavor;
    change('POST', `${hf}/hardware`, { flavor }, `Hardware set to ${flavor}: the Space restarts on it.`);
  });
  on('[data-form="sleep"]', 'submit', (e) => {
    e.preventDefault();
    const v = formData(e.target).seconds;
    const seconds = v ? parseInt(v, 10) : -1;
    change('POST', `${hf}/sleeptime`, { seconds }, seconds > 0 ? `Sleeps after ${Math.round(seconds / 60)} min without visits.` : 'This Space never sleeps now.');
  });
  on('[data-toggle="private"]', 'change', async (e) => {
    const ok = await change('PUT', `${hf}/settings`, { private: e.target.checked }, e.target.checked ? 'The Space is private now.' : 'The Space is public now.');
    if (!ok) e.target.checked = !e.target.checked;
  });
  on('[data-toggle="storage"]', 'change', async (e) => {
    let ok;
    if (e.target.checked) {
      ok = await change('POST', `${hf}/storage`, { tier: 'small' }, 'Persistent storage at /data: the Space restarts with it.');
    } else if (window.confirm('Remove the storage and every file in /data?')) {
      ok = await change('DELETE', `${hf}/storage`, undefined, 'Storage removed: the Space restarts without it.');
    }
    if (!ok) e.target.checked = !e.target.checked;
  });

  function upsertRow(kind, key, value) {
    const tbody = document.querySelector(`#${kind}-table tbody`);
    const none = tbody.querySelector('tr.none');
    if (none) none.remove();
    let tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.key = key;
      tbody.appendChild(tr);
    }
    tr.innerHTML = kind === 'secrets'
      ? '<td class="mono"></td><td class="secret-dots">••••••••</td><td class="small muted">just now</td><td class="actions"><button class="btn small danger">Remove</button></td>'
      : '<td class="mono"></td><td class="mono"></td><td class="actions"><button class="btn small danger">Remove</button></td>';
    tr.children[0].textContent = key;
    if (kind === 'variables') tr.children[1].textContent = value;
    const b = tr.querySelector('button');
    b.dataset.delete = kind;
    b.dataset.key = key;
  }
  ['variables', 'secrets'].forEach((kind) => on(`[data-form="${kind}"]`, 'submit', async (e) => {
    e.preventDefault();
    const f = formData(e.target);
    const what = kind === 'secrets' ? 'Secret' : 'Variable';
    if (await change('POST', `${hf}/${kind}`, { key: f.key, value: f.value }, `${what} ${f.key} saved: the Space restarts to use it.`)) {
      upsertRow(kind, f.key, f.value);
      e.target.reset();
    }
  }));
  /* ---- Custom domains: added, then checked and routed by the server; the page reloads. ---- */
  on('[data-form="domains"]', 'submit', async (e) => {
    e.preventDefault();
    const { domain } = formData(e.target);
    if (await change('POST', `/api/v1/spaces/${id}/domains`, { domain }, `${domain} added: point its DNS here.`)) {
      location.reload();
    }
  });
  document.addEventListener('click', async (e) => {
    const domain = e.target.closest('[data-delete-domain]');
    if (domain && await change('DELETE', `/api/v1/spaces/${id}/domains/${encodeURIComponent(domain.dataset.deleteDomain)}`, undefined, `${domain.dataset.deleteDomain} removed.`)) {
      location.reload();
    }
  });
  document.addEventListener('click', async (e) => {
    const del = e.target.closest('[data-delete]');
    if (del) {
      const { delete: kind, key } = del.dataset;
      if (await change('DELETE', `${hf}/${kind}`, { key }, `${key} removed: the Space restarts without it.`)) {
        del.closest('tr').remove();
      }
      return;
    }
    const edit = e.target.closest('[data-edit-var]');
    if (edit) {
      $('#var-key').value = edit.dataset.editVar;
      $('#var-value').value = edit.dataset.value;
      $('#var-value').focus();
    }
  });

  /* ---- Delete, with the Space id typed as confirmation. ---- */
  const dialog = $('#delete-dialog');
  if (dialog) {
    const input = $('#delete-confirm');
    const confirmBtn = $('#confirm-delete');
    on('#open-delete', 'click', () => { input.value = ''; confirmBtn.disabled = true; dialog.showModal(); input.focus(); });
    input.addEventListener('input', () => { confirmBtn.disabled = input.value.trim() !== id; });
    dialog.addEventListener('close', async () => {
      if (dialog.returnValue !== 'delete' || input.value.trim() !== id) return;
      try {
        await api('DELETE', '/api/repos/delete', { type: 'space', name, organization: owner });
        toast(`${id} deleted.`, 'ok');
        setTimeout(() => { location.href = '/'; }, 700);
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }

  /* ---- Duplicate: a new Space with this one's files and variables, then its page. ---- */
  const dupDialog = $('#duplicate-dialog');
  if (dupDialog) {
    const form = $('#duplicate-form');
    const error = $('#dup-error');
    on('#open-duplicate', 'click', () => { error.classList.add('hidden'); dupDialog.showModal(); $('#dup-name').select(); });
    on('#cancel-duplicate', 'click', () => dupDialog.close());
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(form);
      const target = `${f.owner}/${f.name}`;
      const button = $('#confirm-duplicate');
      button.disabled = true;
      try {
        const out = await api('POST', `${hf}/duplicate`, { repository: target, private: f.private });
        toast(`Duplicated ${id} as ${out.id}: it builds now.`, 'ok');
        location.href = `/spaces/${out.id}`;
      } catch (err) {
        error.textContent = err.message;
        error.classList.remove('hidden');
        button.disabled = false;
      }
    });
  }

})();

/* Organization pages: create, members and roles, rename, delete, leave. Every action is a call
   to /api/v1/orgs with the session cookie (window.Spaceport.api); errors show as toasts with
   the API's message, which says what to fix. */
(() => {
  'use strict';
  const { api, toast, formData } = window.Spaceport;
  const page = document.getElementById('org');
  const org = page ? page.dataset.org : null;
  const base = org ? `/api/v1/orgs/${encodeURIComponent(org)}` : null;

  const newOrg = document.getElementById('new-org');
  if (newOrg) {
    newOrg.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(newOrg);
      try {
        const o = await api('POST', '/api/v1/orgs', { name: f.name, fullname: f.fullname || null });
        window.location.assign(`/organizations/${encodeURIComponent(o.name)}`);
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }

  const addMember = document.getElementById('add-member');
  if (addMember) {
    addMember.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(addMember);
      try {
        const m = await api('PUT', `${base}/members/${encodeURIComponent(f.user)}`, { role: f.role });
        toast(`${m.user} is now a ${m.role} member`, 'ok');
        window.location.reload();
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }

  document.addEventListener('change', async (e) => {
    const sel = e.target.closest('[data-role-of]');
    if (!sel) return;
    const user = sel.dataset.roleOf;
    const before = sel.querySelector('option[selected]');
    try {
      const m = await api('PUT', `${base}/members/${encodeURIComponent(user)}`, { role: sel.value });
      sel.querySelectorAll('option').forEach((o) => { o.defaultSelected = o.value === m.role; });
      toast(`${m.user} is now a ${m.role} member`, 'ok');
    } catch (err) {
      if (before) sel.value = before.value; /* the role it still has */
      toast(err.message, 'err');
    }
  });

  document.addEventListener('click', async (e) => {
    const remove = e.target.closest('[data-remove-member]');
    const leave = e.target.closest('#leave-org');
    const del = e.target.closest('#delete-org');
    if (!remove && !leave && !del) return;
    try {
      if (remove) {
        const user = remove.dataset.removeMember;
        if (!window.confirm(`Remove ${user} from ${org}?`)) return;
        await api('DELETE', `${base}/members/${encodeURIComponent(user)}`);
        remove.closest('tr').remove();
        toast(`Removed ${user}`, 'ok');
      } else if (leave) {
        if (!window.confirm(`Leave ${org}? You lose access to its private Spaces.`)) return;
        await api('DELETE', `${base}/members/${encodeURIComponent(leave.dataset.me)}`);
        window.location.assign('/organizations');
      } else {
        if (!window.confirm(`Delete the organization ${org}?`)) return;
        await api('DELETE', base);
        window.location.assign('/organizations');
      }
    } catch (err) {
      toast(err.message, 'err');
    }
  });

  const rename = document.getElementById('rename-org');
  if (rename) {
    rename.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = formData(rename);
      try {
        const o = await api('PATCH', base, { name: f.name });
        window.location.assign(`/organizations/${encodeURIComponent(o.name)}`);
      } catch (err) {
        toast(err.message, 'err');
      }
    });
  }
})();

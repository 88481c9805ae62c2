/* Admin quotas page: "Edit" fills the form with a namespace's limits; "Save quota" sends all
   six (an empty field is unlimited) to PUT /api/v1/quotas/{namespace}, then shows the result. */
(() => {
  'use strict';
  const { api, toast } = window.Spaceport;
  const form = document.getElementById('set-quota');
  if (!form) return;
  const LIMITS = ['spaces', 'cpu', 'memory_gb', 'gpus', 'storage_gb', 'builds_per_hour'];

  document.addEventListener('click', (e) => {
    const b = e.target.closest('[data-edit-quota]');
    if (!b) return;
    const limits = JSON.parse(b.dataset.limits || '{}');
    form.elements.namespace.value = b.dataset.editQuota;
    for (const key of LIMITS) form.elements[key].value = limits[key] ?? '';
    form.elements.spaces.focus();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const namespace = form.elements.namespace.value.trim();
    const body = {};
    for (const key of LIMITS) {
      const v = form.elements[key].value.trim();
      body[key] = v === '' ? null : Number(v);
    }
    const button = document.getElementById('save-quota');
    button.disabled = true;
    try {
      await api('PUT', `/api/v1/quotas/${encodeURIComponent(namespace)}`, body);
      toast(`Quota of ${namespace} saved`, 'ok');
      setTimeout(() => window.location.reload(), 600);
    } catch (err) {
      toast(err.message, 'err');
    } finally {
      button.disabled = false;
    }
  });
})();

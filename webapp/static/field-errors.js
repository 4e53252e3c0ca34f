// Form errors next to their field, never a native bubble and a banner together: the field gets
// aria-invalid and aria-describedby naming the message just after it, and the message goes as
// soon as the field's value changes. Forms that use it are novalidate (no browser bubbles).
(function () {
  'use strict';
  const errorId = (field) => field.id + '-error';

  function describedBy(field, ids) {
    if (ids.length) field.setAttribute('aria-describedby', ids.join(' '));
    else field.removeAttribute('aria-describedby');
  }

  function clear(field) {
    const node = document.getElementById(errorId(field));
    if (!node) return;
    node.remove();
    field.removeAttribute('aria-invalid');
    describedBy(field, (field.getAttribute('aria-describedby') || '').split(' ')
      .filter(function (id) { return id && id !== node.id; }));
  }

  // Say `text` next to `field` and move the focus there (a screen reader reads it with it).
  function show(field, text) {
    clear(field);
    const node = window.Resound.element('p', text, { id: errorId(field), class: 'field-error' });
    field.after(node);
    field.setAttribute('aria-invalid', 'true');
    describedBy(field, (field.getAttribute('aria-describedby') || '').split(' ')
      .filter(Boolean).concat(node.id));
    field.focus();
  }

  // Clear a field's message when its value changes.
  function watch(form) {
    ['input', 'change'].forEach(function (type) {
      form.addEventListener(type, function (event) {
        if (event.target.id) clear(event.target);
      });
    });
  }

  window.Resound.fieldErrors = { show: show, clear: clear, watch: watch };
})();

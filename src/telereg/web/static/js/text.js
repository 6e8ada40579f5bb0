// Text helpers for pages that build HTML from API data.
// esc: a value as HTML text (quotes included, so it is safe inside attributes too).
window.esc = value => String(value ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// filled: a translated text with its {name} places filled from values (unknown names stay).
window.filled = (text, values) => text.replace(/\{(\w+)\}/g, (all, key) => key in values ? values[key] : all);
// listed: items as a list in the page's language (Chinese: 、 between them).
window.listed = items => items.join(document.documentElement.lang === "zh-CN" ? "、" : ", ");

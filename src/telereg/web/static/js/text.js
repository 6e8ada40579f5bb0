// Text helpers for pages that build HTML from API data.
// esc: a value as HTML text (quotes included, so it is safe inside attributes too).
window.esc = value => String(value ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

// Click a column header of a table.data to sort its rows; click again to reverse.
document.addEventListener("click", event => {
  const header = event.target.closest("table.data thead th");
  if (!header) return;
  const table = header.closest("table");
  const body = table.tBodies[0];
  const index = [...header.parentNode.children].indexOf(header);
  const descending = header.dataset.sorted === "asc";
  table.querySelectorAll("thead th").forEach(th => delete th.dataset.sorted);
  header.dataset.sorted = descending ? "desc" : "asc";
  const key = row => {
    const text = (row.children[index] || {}).textContent || "";
    const number = parseFloat(text.replace(/[,%\s]/g, ""));
    return Number.isNaN(number) ? text : number;
  };
  const rows = [...body.rows].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "zh");
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
});

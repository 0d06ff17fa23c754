// The Registry page's search box: hide the definitions that do not match what is typed.
// Each card and each feature row carries its words in data-search (lower case); every
// whitespace-separated term typed must appear in them. Works without this script too:
// then everything is simply shown.
"use strict";

function matches(text, terms) {
  return terms.every((term) => text.includes(term));
}

function filterDefinitions(input) {
  const root = document.querySelector(input.dataset.filter);
  if (!root) return;
  const terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  let total = 0;
  for (const card of root.querySelectorAll(".card[data-search]")) {
    total += 1;
    const visible = matches(card.dataset.search, terms);
    card.hidden = !visible;
    if (visible) shown += 1;
    const rows = Array.from(card.querySelectorAll("tr[data-search]"));
    const rowHits = rows.filter((row) => matches(row.dataset.search, terms));
    // A card matched by its own words (a view's tag) keeps all its rows.
    for (const row of rows) {
      row.hidden = visible && rowHits.length > 0 && !rowHits.includes(row);
    }
  }
  for (const section of root.querySelectorAll("section.definitions")) {
    section.hidden = section.querySelector(".card:not([hidden])") === null;
  }
  const status = document.getElementById(input.id + "-status");
  if (status) {
    status.textContent = terms.length ? `${shown} of ${total} definitions match` : "";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-filter]")) {
    input.addEventListener("input", () => filterDefinitions(input));
    const query = new URLSearchParams(window.location.search).get("q");
    if (query) {
      input.value = query;
    }
    filterDefinitions(input);
  }
});

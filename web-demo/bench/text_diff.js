// Benchmark (not a test): what the text box's diffs cost (bindings/wasm/js/text_diff.js),
// in node, on texts of 50,000 and 200,000 characters with others' edits scattered through
// them: `textEdits` (run on every remote refresh of the demo's note and once per batch of
// keystrokes in the Worker) and `carrySplices`. Prints a Markdown table.
//   node web-demo/bench/text_diff.js
import { carrySplices, textEdits } from "../../bindings/wasm/js/text_diff.js";

let seed = 1;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const words = ["the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog ", "😀 ", "é "];
const text = (n) => { let s = ""; while (s.length < n) s += words[rand(words.length)]; return s.slice(0, n); };

/** `a` with `k` one-to-three-character insertions and deletions at random places. */
function scatter(a, k) {
  let b = a;
  for (let i = 0; i < k; i++) {
    let at = rand(b.length + 1);
    if ((b.charCodeAt(at) & 0xfc00) === 0xdc00) at--; // not inside an emoji
    b = rand(2) ? b.slice(0, at) + "xyz".slice(0, 1 + rand(3)) + b.slice(at) : b.slice(0, at) + b.slice(at + 1 + rand(2));
    if ((b.charCodeAt(at) & 0xfc00) === 0xdc00) b = b.slice(0, at) + b.slice(at + 1); // a half pair left
  }
  return b;
}

/** Median of `runs` timings of `f`, in ms. */
function time(f, runs = 9) {
  const t = [];
  for (let i = 0; i < runs; i++) { const s = performance.now(); f(); t.push(performance.now() - s); }
  t.sort((x, y) => x - y);
  return t[runs >> 1];
}

console.log("| text (UTF-16 units) | others' edits | regions | textEdits ms | carrySplices ms (5 keystrokes) |");
console.log("| --: | --: | --: | --: | --: |");
for (const [n, k] of [[50_000, 1], [50_000, 10], [50_000, 100], [50_000, 1000], [200_000, 2], [200_000, 20]]) {
  const a = text(n), b = scatter(a, k);
  const regions = textEdits(a, b).length;
  const at = rand(a.length);
  const keys = [];
  let seen = a;
  for (const ch of "hello") { keys.push({ seen, index: at + keys.length, deleteCount: 0, text: ch }); seen = seen.slice(0, at + keys.length - 1) + ch + seen.slice(at + keys.length - 1); }
  console.log(`| ${n.toLocaleString("en")} | ${k} | ${regions} | ${time(() => textEdits(a, b)).toFixed(2)} | ${time(() => carrySplices(b, keys)).toFixed(2)} |`);
}

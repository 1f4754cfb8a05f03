// The text box's diffs (bindings/wasm/js/text_diff.js), without a browser: others' edits in
// several places are carried apart, so a keystroke or a caret between them keeps its place.
import { test } from "node:test";
import assert from "node:assert/strict";
import { carryPos, carryPosThrough, carrySplices, textDiff, textEdits } from "../../bindings/wasm/js/text_diff.js";

/** A seeded random source: `rand(n)` in [0, n), `letters(n, of)` n letters drawn from `of`. */
function seeded(seed) {
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  return { rand, letters: (n, of) => Array.from({ length: n }, () => of[rand(of.length)]).join("") };
}

/** `a` with `edits` (regions against `a`, in order) applied. */
function apply(a, edits) {
  let out = "", at = 0;
  for (const { index, del, ins } of edits) {
    assert.ok(index >= at, `regions in order and apart: ${JSON.stringify(edits)}`);
    out += a.slice(at, index) + ins;
    at = index + del;
  }
  return out + a.slice(at);
}

test("edits made in two places are two regions, and a position between them keeps its place", () => {
  const seen = "AAAA BBBB";
  const now = "1AAAA BBBB2"; // others typed at both ends
  assert.deepEqual(textEdits(seen, now), [{ index: 0, del: 0, ins: "1" }, { index: 9, del: 0, ins: "2" }]);
  // A keystroke typed after "AAAA " in `seen` goes after "AAAA " in `now`.
  const at = carryPosThrough(5, textEdits(seen, now), false);
  assert.equal(at, 6);
  assert.equal(now.slice(0, at) + "X" + now.slice(at), "1AAAA XBBBB2");
  // The one region spanning both sends it to the start instead: what this replaces.
  assert.equal(carryPos(5, textDiff(seen, now), false), 0);
});

test("deletions and replacements apart from each other carry positions across all of them", () => {
  const seen = "the quick brown fox jumps over the lazy dog";
  const now = "the brown fox leaps over the lazy cat";
  const edits = textEdits(seen, now);
  assert.equal(apply(seen, edits), now);
  assert.ok(edits.length >= 3, `three places changed: ${JSON.stringify(edits)}`);
  // "over" starts at 26 in `seen` and at 20 in `now`.
  assert.equal(carryPosThrough(seen.indexOf("over"), edits, false), now.indexOf("over"));
  // A caret at the end stays at the end; one at the start stays there.
  assert.equal(carryPosThrough(seen.length, edits, true), now.length);
  assert.equal(carryPosThrough(0, edits, false), 0);
});

test("a position inside text others deleted goes to where it was, start or end", () => {
  const seen = "keep DROP keep";
  const now = "keep  keep";
  const edits = textEdits(seen, now);
  assert.deepEqual(edits, [{ index: 5, del: 4, ins: "" }]);
  assert.equal(carryPosThrough(7, edits, false), 5);
  assert.equal(carryPosThrough(7, edits, true), 5);
});

test("an insertion at the position leaves it before the inserted text", () => {
  const edits = textEdits("ab", "aXb");
  assert.equal(carryPosThrough(1, edits, false), 1);
  assert.equal(carryPosThrough(2, edits, false), 3);
});

test("no region splits a surrogate pair", () => {
  // 😀 and 😃 share their first UTF-16 unit; so do the two pairs around the edit.
  const seen = "😀 and 😀";
  const now = "😃 and 😀😃";
  const edits = textEdits(seen, now);
  assert.equal(apply(seen, edits), now);
  for (const { index, del, ins } of edits) {
    for (const at of [index, index + del]) {
      const code = seen.charCodeAt(at);
      assert.ok(!(code >= 0xdc00 && code <= 0xdfff), `region boundary ${at} inside a pair`);
    }
    assert.equal(Array.from(ins).join(""), ins);
    assert.ok(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(ins), `inserted text ${JSON.stringify(ins)} is whole`);
  }
  // The caret after " and " (7 units in) keeps its place.
  assert.equal(carryPosThrough(7, edits, false), 7);
});

test("equal texts have no regions; texts too different to search are one region that still applies", () => {
  assert.deepEqual(textEdits("same", "same"), []);
  const a = "x".repeat(3000) + Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i * 7) % 26)).join("");
  const b = Array.from({ length: 6000 }, (_, i) => String.fromCharCode(65 + (i * 11) % 26)).join("");
  const edits = textEdits(a, b);
  assert.equal(apply(a, edits), b);
});

test("random edits in many places: the regions rebuild the new text, and every kept letter is carried to itself", () => {
  const { rand } = seeded(7);
  const alphabet = ["a", "b", "c", " ", "é", "😀"];
  const word = (n) => Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join("");
  for (let round = 0; round < 300; round++) {
    const a = word(1 + rand(80));
    let b = "";
    for (const point of a) {
      if (rand(6) === 0) { b += word(rand(3)); continue; } // replaced or deleted
      if (rand(8) === 0) b += word(1 + rand(2)); // inserted before it
      b += point;
    }
    const edits = textEdits(a, b);
    const what = `round ${round}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}: ${JSON.stringify(edits)}`;
    assert.equal(apply(a, edits), b, what);
    // A shortest script: never more units changed than the one spanning region.
    const whole = textDiff(a, b);
    const changed = edits.reduce((n, e) => n + e.del + e.ins.length, 0);
    assert.ok(changed <= whole.del + whole.ins.length, what);
    let unit = 0, last = 0;
    for (const point of a) {
      const carried = carryPosThrough(unit, edits, false);
      assert.ok(carried >= last && carried <= b.length, `${what}: positions stay in order`);
      last = carried;
      const inRegion = edits.some((e) => unit >= e.index && unit < e.index + e.del);
      // A kept letter ends where it did (text others put right before it goes before it).
      const end = carryPosThrough(unit + point.length, edits, false);
      if (!inRegion) assert.equal(b.slice(end - point.length, end), point, `${what}: kept ${unit}`);
      unit += point.length;
    }
  }
});

/** `now` after a batch of `splices` ([index, deleteCount, text] each, the first on `seen0`,
 *  each next one on the box's text after the one before) is carried onto it. */
function batch(seen0, now, splices) {
  const edits = [];
  let seen = seen0;
  for (const [index, deleteCount, text] of splices) {
    edits.push({ seen, index, deleteCount, text });
    seen = seen.slice(0, index) + text + seen.slice(index + deleteCount);
  }
  return run(now, carrySplices(now, edits));
}

/** The keystrokes that type `word` at `at`, one letter each. */
const keystrokes = (word, at) => Array.from(word, (ch, k) => [at + k, 0, ch]);

/** The text after running `splices` (from `carrySplices`) on `now`. */
function run(now, splices) {
  for (const s of splices) now = now.slice(0, s.index) + s.ins + now.slice(s.index + s.del);
  return now;
}

test("a splice carried over others' edits: a deletion takes only what the user saw and others left, typing goes on from the user's own text", () => {
  const cases = [
    // [seen, now (others' edits), index, deleteCount, text, expected]
    ["0123456789", "012AB34567", 2, 3, "", "01AB567"], // others typed inside it, deleted elsewhere
    ["0123456789", "012AB34567", 2, 3, "Q", "01QAB567"],
    ["abcdef", "QQQQabcXYZ", 2, 2, "", "QQQQabXYZ"], // others replaced its end
    ["abcdef", "aXYdef", 2, 2, "", "aXYef"], // others replaced its start
    ["abcd", "aXbcd", 1, 2, "", "aXd"], // others typed at its start
    ["abcd", "abcXd", 1, 2, "", "aXd"], // and at its end
    ["abcdef", "af", 1, 4, "Z", "aZf"], // others deleted it all first
    ["Bob t", "Bob t Ann", 5, 0, "ypes", "Bob types Ann"], // others typed where the user goes on
    ["ab", "aXYb", 1, 0, "c", "acXYb"],
  ];
  for (const [seen, now, index, deleteCount, text, expected] of cases) {
    const got = run(now, carrySplices(now, [{ seen, index, deleteCount, text }]));
    assert.equal(got, expected, JSON.stringify({ seen, now, index, deleteCount, text }));
  }
});

test("a batch of splices carried over repeated letters keeps what nobody deleted and the typed order", () => {
  // Both deleted "fo" of "food" (the user with Delete, twice): the "o" nobody deleted stays.
  assert.equal(batch("food", "od", [[0, 1, ""], [0, 1, ""]]), "od");
  assert.equal(batch("good food", "good od", [[5, 1, ""], [5, 1, ""]]), "good od");
  // Typing inside text others deleted keeps the typed order.
  assert.equal(batch("off we go", "off  go", [[5, 0, "e"], [6, 0, "d"]]), "off ed go");
  assert.equal(batch("ab", "", [[1, 0, "b"], [2, 0, "a"]]), "ba");
  // Others typed right after the word the user goes on with, and edited elsewhere too.
  assert.equal(batch("go to the", "Go to the there", [[9, 0, "n"]]), "Go to then there");
});

test("a splice outside the text it was made on is refused with a clear error", () => {
  assert.throws(() => carrySplices("", [{ seen: "ab", index: 1, deleteCount: 5, text: "" }]), /splice 0/);
  assert.throws(() => carrySplices("", [{ seen: "ab", index: 0, deleteCount: 0 }]), /splice 0/);
  assert.throws(() => carrySplices("", [{ seen: "ab", index: -1, deleteCount: 0, text: "x" }]), RangeError);
});

test("a word typed in several keystrokes stays whole when others' edits line up more than one way", () => {
  // Texts of few letters, so that others' edits can be lined up several ways.
  const { rand, letters } = seeded(5);
  for (let round = 0; round < 3000; round++) {
    const base = letters(rand(10), "ab ");
    let now = base;
    for (let k = 1 + rand(3); k > 0; k--) {
      const i = rand(now.length + 1);
      now = now.slice(0, i) + letters(rand(3), "ab ") + now.slice(i + rand(2));
    }
    const word = letters(2 + rand(3), "ab"), at = rand(base.length + 1);
    const got = batch(base, now, keystrokes(word, at));
    const whole = Array.from({ length: now.length + 1 }, (_, p) => now.slice(0, p) + word + now.slice(p)).includes(got);
    assert.ok(whole, `round ${round}: ${JSON.stringify({ base, now, at, word, got })}`);
  }
});

test("typing that goes on from text stored before stays attached to it when others typed right after it", () => {
  const { rand, letters } = seeded(3);
  for (let round = 0; round < 1000; round++) {
    const left = letters(rand(8), "ab "), typed = letters(1 + rand(3), "ab"), right = letters(rand(8), "ab ");
    const base = left + typed + right; // the box shows what the user typed so far
    let now = left + typed + letters(1 + rand(4), "xy ") + right; // others typed right after it
    if (rand(2) === 0) now = letters(1 + rand(3), "xy") + now; // and maybe elsewhere too
    const rest = letters(1 + rand(4), "ab"), at = left.length + typed.length;
    const got = batch(base, now, keystrokes(rest, at));
    assert.ok(got.includes(left + typed + rest), `round ${round}: ${JSON.stringify({ base, now, rest, got })}`);
  }
});

test("random splices carried over random edits of others: nothing typed is lost, and only what the user deleted goes", () => {
  const { rand } = seeded(11);
  let fresh = 0x4e00; // every letter below is unique: which one survived is unambiguous
  const letters = (n) => Array.from({ length: n }, () => String.fromCharCode(fresh++)).join("");
  for (let round = 0; round < 400; round++) {
    fresh = 0x4e00;
    const seen0 = letters(1 + rand(30));
    // Others delete some letters and type new ones.
    let now = "";
    const othersTyped = [], othersDeleted = new Set();
    for (const ch of seen0) {
      if (rand(5) === 0) { const w = letters(1 + rand(3)); othersTyped.push(w); now += w; }
      if (rand(5) === 0) othersDeleted.add(ch); else now += ch;
    }
    // The box makes a few splices in a row, each on its own text so far.
    const edits = [], userTyped = [], userDeleted = new Set();
    let seen = seen0;
    for (let k = 1 + rand(4); k > 0; k--) {
      const index = rand(seen.length + 1), deleteCount = rand(Math.min(4, seen.length - index) + 1);
      const text = rand(3) === 0 ? "" : letters(1 + rand(3));
      edits.push({ seen, index, deleteCount, text });
      for (const ch of seen.slice(index, index + deleteCount)) userDeleted.add(ch);
      if (text) userTyped.push(text);
      seen = seen.slice(0, index) + text + seen.slice(index + deleteCount);
      // Text the box typed and then cut into or deleted itself is not expected whole.
      for (let i = userTyped.length - 1; i >= 0; i--) if (!seen.includes(userTyped[i])) userTyped.splice(i, 1);
    }
    const got = run(now, carrySplices(now, edits));
    const what = `round ${round}: ${JSON.stringify({ seen0, now, edits, got })}`;
    for (const w of othersTyped) for (const ch of w) assert.ok(got.includes(ch), `${what}: others' ${ch} kept`);
    for (const w of userTyped) assert.ok(got.includes(w), `${what}: typed ${w} kept whole`);
    for (const ch of seen0) {
      const gone = othersDeleted.has(ch) || userDeleted.has(ch);
      assert.equal(got.includes(ch), !gone, `${what}: ${ch} ${gone ? "deleted" : "kept"}`);
    }
    // The letters of the first text keep their order.
    const kept = Array.from(got).filter((ch) => seen0.includes(ch)).join("");
    assert.equal(kept, Array.from(seen0).filter((ch) => got.includes(ch)).join(""), `${what}: order`);
  }
});

// The text box's diffs (bindings/wasm/js/text_diff.js), without a browser: others' edits in
// several places are carried apart, so a keystroke or a caret between them keeps its place.
import { test } from "node:test";
import assert from "node:assert/strict";
import { carryPos, carryPosThrough, textDiff, textEdits } from "../../bindings/wasm/js/text_diff.js";

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
  let seed = 7;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
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

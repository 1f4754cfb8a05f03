// Text diffs for a text box bound to a store's text (UTF-16 units, as JS strings count):
// where two texts differ, and where a position moves across that. Used by the Worker
// (`spliceTextSeen`) and exported to pages (`concord.js`).
//
// `textDiff` gives the one region that spans every difference (what a single input event
// changed). `textEdits` gives each region apart, from a shortest edit script: others' edits
// made in several places since a text box last read the store are carried one by one, so
// a keystroke or a caret between two of them stays where it was typed.

const isHigh = (s, i) => i >= 0 && i < s.length && (s.charCodeAt(i) & 0xfc00) === 0xd800;
const isLow = (s, i) => i >= 0 && i < s.length && (s.charCodeAt(i) & 0xfc00) === 0xdc00;

/** The one region where `a` and `b` differ: {index, del, ins} turns `a` into `b`. It never
 *  splits a surrogate pair (an emoji is one edit of two UTF-16 units). */
export function textDiff(a, b) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  if (isHigh(a, start - 1)) start--;
  let endA = a.length, endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  if (isLow(a, endA) || isLow(b, endB)) { endA++; endB++; }
  return { index: start, del: endA - start, ins: b.slice(start, endB) };
}

/** The shortest edit script is searched for up to this many steps of work (code points
 *  compared, about (length of the differing part) x (edits)); past it, the differing part
 *  is one region, as `textDiff` gives it. */
const EDIT_SEARCH_BUDGET = 4_000_000;

/** Every region where `a` and `b` differ, in order and apart: [{index, del, ins}], each
 *  against `a`, which together turn `a` into `b` (from a shortest edit script by code
 *  point, so no region splits a surrogate pair). Empty when the texts are equal. */
export function textEdits(a, b) {
  const whole = textDiff(a, b);
  if (whole.del === 0 && whole.ins.length === 0) return [];
  // Only the part between the common prefix and suffix can differ.
  const from = Array.from(a.slice(whole.index, whole.index + whole.del));
  const to = Array.from(whole.ins);
  const script = shortestEdits(from, to, EDIT_SEARCH_BUDGET);
  if (!script) return [whole];
  const edits = [];
  let unit = whole.index; // UTF-16 index in `a` of code point `x` of `from`
  let x = 0;
  for (const { atX, del, insFrom, insTo } of script) {
    for (; x < atX; x++) unit += from[x].length;
    const index = unit;
    for (; x < atX + del; x++) unit += from[x].length;
    edits.push({ index, del: unit - index, ins: to.slice(insFrom, insTo).join("") });
  }
  return edits;
}

/** A shortest edit script from `a` to `b` (arrays) by Myers' O((N+M)D) search: its
 *  regions [{atX, del, insFrom, insTo}] (delete `del` items of `a` from `atX`, put
 *  `b[insFrom..insTo]` there), in order; null when the search passes `budget`. */
function shortestEdits(a, b, budget) {
  const n = a.length, m = b.length, max = n + m;
  const offset = max + 1;
  let v = new Int32Array(2 * max + 3);
  const trace = [];
  let work = 0;
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1])
        ? v[offset + k + 1]
        : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x++; y++; work++; }
      v[offset + k] = x;
      if (x >= n && y >= m) return regions(trace, n, m);
    }
    work += 2 * d + 1;
    if (work > budget) return null;
  }
  return null;
}

/** Walks the search's trace back from (n, m): the edit script's regions, in order. */
function regions(trace, n, m) {
  const moves = []; // [fromX, fromY, toX, toY], last first
  let x = n, y = m;
  for (let d = trace.length - 1; d > 0; d--) {
    const v = trace[d]; // the furthest x per diagonal k after d - 1 edits, at v[k + d + 1]
    const at = (k) => v[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK), prevY = prevX - prevK;
    while (x > prevX && y > prevY) { x--; y--; } // the run of equal items after the edit
    moves.push([prevX, prevY, x, y]);
    x = prevX; y = prevY;
  }
  const out = [];
  for (let i = moves.length - 1; i >= 0; i--) {
    const [fx, fy, tx, ty] = moves[i];
    const last = out[out.length - 1];
    if (last && last.atX + last.del === fx && last.insTo === fy) {
      last.del += tx - fx; // adjoins the region before it: no equal item between
      last.insTo = ty;
    } else {
      out.push({ atX: fx, del: tx - fx, insFrom: fy, insTo: ty });
    }
  }
  return out;
}

/** Where position `pos` of a text lies once the diff `d` is applied to it; a position
 *  inside the replaced text goes to its start (`toEnd`: its end). */
export function carryPos(pos, d, toEnd) {
  if (pos <= d.index) return pos;
  if (pos >= d.index + d.del) return pos - d.del + d.ins.length;
  return toEnd ? d.index + d.ins.length : d.index;
}

/** `carryPos` across every region of `textEdits` (in order, against the same text). */
export function carryPosThrough(pos, edits, toEnd) {
  let shift = 0;
  for (const d of edits) {
    if (pos < d.index + d.del || (pos === d.index && d.del === 0)) {
      return carryPos(pos, d, toEnd) + shift;
    }
    shift += d.ins.length - d.del;
  }
  return pos + shift;
}

/** Whether others' region `r` lies before position `pos` of the text the user saw: it
 *  ends there or earlier, except text others put right at `pos`, which comes after what
 *  the user types there. */
const before = (r, pos) => r.index + r.del < pos || (r.del > 0 && r.index + r.del === pos);

/** A splice made on the text the user saw (`del` units from `index` replaced by `text`),
 *  carried over others' edits since (`edits`, regions against that text): the splices that
 *  make it on the text others left, in the order to run them ({index, del, ins} each). The
 *  deletion takes only what the user saw there and others left: text others put inside it
 *  or at either end of it stays, and what others deleted of it is gone already. The typed
 *  text goes where the first of those pieces is, or, when others deleted it all (or there
 *  was nothing to delete), where the range now is: before text others put at that spot, so
 *  that it goes on from what the user typed before it (typing at the end of a word that
 *  others also typed after keeps the word whole). */
export function carrySplice(edits, index, del, text) {
  const end = index + del;
  const pieces = []; // [start, end) in the new text
  let pos = index, shift = 0; // `pos`: the first unit of the range not yet placed
  for (const r of edits) {
    if (before(r, pos)) { shift += r.ins.length - r.del; continue; }
    if (r.index >= end) break; // after it
    if (r.index > pos) pieces.push([pos + shift, r.index + shift]);
    shift += r.ins.length - r.del;
    pos = Math.max(pos, r.index + r.del);
  }
  if (pos < end) pieces.push([pos + shift, end + shift]);
  const out = [];
  for (let i = pieces.length - 1; i >= 1; i--) {
    out.push({ index: pieces[i][0], del: pieces[i][1] - pieces[i][0], ins: "" });
  }
  if (pieces.length) out.push({ index: pieces[0][0], del: pieces[0][1] - pieces[0][0], ins: text });
  else if (text) out.push({ index: pos + shift, del: 0, ins: text });
  return out;
}

/** Others' edits `edits` (regions against the text the user saw) once the user's own splice
 *  there (`del` units from `index` replaced by `len` units), carried by `carrySplice`, is
 *  made on both texts: the same regions against the user's new text. Null when the splice
 *  overlaps one of them (diff the two texts again). */
export function afterOwnSplice(edits, index, del, len) {
  const out = [];
  for (const r of edits) {
    if (before(r, index)) out.push(r);
    else if (r.index >= index + del) out.push({ index: r.index + len - del, del: r.del, ins: r.ins });
    else return null;
  }
  return out;
}

/** Splices a text box made, each on the text as it showed it (`seen`, then the box's own
 *  next text), carried onto `now`, the text as others left it: the splices to run on `now`,
 *  in order ({index, del, ins}). Others' edits are diffed once and then moved along by each
 *  of the box's own splices (a new diff of the next `seen` could line repeated letters up
 *  differently, and split a word typed across keystrokes). */
export function carrySplices(now, edits) {
  const out = [];
  let others = null, expected = null;
  for (const { seen, index, deleteCount, text } of edits) {
    if (others === null || seen !== expected) others = textEdits(seen, now);
    for (const s of carrySplice(others, index, deleteCount, text)) {
      out.push(s);
      now = now.slice(0, s.index) + s.ins + now.slice(s.index + s.del);
    }
    expected = seen.slice(0, index) + text + seen.slice(index + deleteCount);
    others = afterOwnSplice(others, index, deleteCount, text.length);
  }
  return out;
}

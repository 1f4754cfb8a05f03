// Text diffs for a text box bound to a store's text (UTF-16 units, as JS strings count):
// where two texts differ, and where a position moves across that. Used by the Worker
// (`spliceTextSeen`) and exported to pages (`concord.js`).
//
// `textDiff` gives the one region that spans every difference (what a single input event
// changed). `textEdits` gives each region apart, from a shortest edit script: others' edits
// made in several places since a text box last read the store are carried one by one, so
// a caret (`carryPosThrough`) or a batch of keystrokes (`carrySplices`) between two of
// them stays where it was typed.

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
  // The common suffix, by code point, read only as far as an insertion slides into it.
  let suffix = null;
  const at = (x) => x < from.length ? from[x]
    : (suffix ??= Array.from(a.slice(whole.index + whole.del)))[x - from.length];
  const inserted = (y) => y < to.length ? to[y] : at(y - to.length + from.length);
  slideInsertions(script, at, inserted, from.length + (a.length - whole.index - whole.del));
  const edits = [];
  let unit = whole.index; // UTF-16 index in `a` of code point `x` of `from` (and the suffix)
  let x = 0;
  for (const { atX, del, insFrom, insTo } of script) {
    for (; x < atX; x++) unit += at(x).length;
    const index = unit;
    for (; x < atX + del; x++) unit += at(x).length;
    let ins = "";
    for (let y = insFrom; y < insTo; y++) ins += inserted(y);
    edits.push({ index, del: unit - index, ins });
  }
  return edits;
}

/** Moves each region that only inserts as far right as the equal items after it allow
 *  (the search leaves it as far left as they allow), into the common suffix too: text
 *  others typed right after a word that ends in the letter their text starts with then
 *  comes after the word, where the common prefix of two texts would also put it, and the
 *  user's typing at the end of the word goes on from it. Regions stay apart. `a(x)`,
 *  `b(y)`: the items of both texts past the common prefix; `n`: how many `a` has. */
function slideInsertions(script, a, b, n) {
  script.forEach((r, i) => {
    if (r.del !== 0) return;
    const limit = i + 1 < script.length ? script[i + 1].atX - 1 : n; // an equal item before the next
    while (r.atX < limit && b(r.insFrom) === a(r.atX)) { r.atX++; r.insFrom++; r.insTo++; }
  });
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

/** Others' edits as an alignment of the text the user saw (`seen`) with the text as others
 *  left it (`now`), in order: runs of units both hold (`{eq: n}`), units of `seen` others
 *  deleted (`{del: n}`) and text others put in (`{ins: text}`). */
function align(seen, now) {
  const ops = [];
  let at = 0;
  for (const r of textEdits(seen, now)) {
    if (r.index > at) ops.push({ eq: r.index - at });
    if (r.del) ops.push({ del: r.del });
    if (r.ins) ops.push({ ins: r.ins });
    at = r.index + r.del;
  }
  if (seen.length > at) ops.push({ eq: seen.length - at });
  return ops;
}

/** A splice made on the text the user saw (`del` units from `index` replaced by `text`),
 *  carried through the alignment `ops` (see `align`) onto the text others left: the splices
 *  that make it there, in the order to run them ({index, del, ins} each), and the alignment
 *  of the user's new text with the result. The deletion takes only what the user saw there
 *  and others left: text others put inside it or at its ends stays, and what others
 *  deleted of it is gone already. The typed text goes at the first point at or after
 *  `index`: before text others put at that spot, so that typing goes on from what the user
 *  typed before it (typing at the end of a word others also typed after keeps it whole). */
function spliceThrough(ops, index, del, text) {
  const end = index + del;
  const out = [], pieces = []; // pieces: [start, end) in the text others left, to delete
  let sp = 0, np = 0, at = -1; // positions in the user's text and in the text others left
  const place = () => {
    if (at >= 0) return;
    at = np;
    if (text) out.push({ eq: text.length });
  };
  for (const op of ops) {
    if (op.ins !== undefined) {
      if (sp >= index) place();
      out.push(op);
      np += op.ins.length;
      continue;
    }
    const both = op.eq !== undefined, n = both ? op.eq : op.del;
    const cuts = [sp, Math.min(Math.max(index, sp), sp + n), Math.min(Math.max(end, sp), sp + n), sp + n];
    for (let k = 0; k < 3; k++) {
      const [lo, hi] = [cuts[k], cuts[k + 1]];
      if (lo >= index) place();
      if (hi === lo) continue;
      if (k === 1) { // inside the user's deletion: gone from both texts
        if (both) pieces.push([np, np + hi - lo]);
      } else {
        out.push(both ? { eq: hi - lo } : { del: hi - lo });
      }
      if (both) np += hi - lo;
    }
    sp += n;
  }
  place();
  const splices = [];
  for (let k = pieces.length - 1; k >= 0; k--) {
    const [from, to] = pieces[k];
    if (k === 0 && from === at) splices.push({ index: at, del: to - from, ins: text });
    else splices.push({ index: from, del: to - from, ins: "" });
  }
  if (text && !(pieces.length && pieces[0][0] === at)) splices.push({ index: at, del: 0, ins: text });
  // The new alignment, with neighbouring runs of one kind joined.
  const joined = [];
  for (const op of out) {
    const last = joined[joined.length - 1];
    if (last && op.eq !== undefined && last.eq !== undefined) last.eq += op.eq;
    else if (last && op.del !== undefined && last.del !== undefined) last.del += op.del;
    else if (last && op.ins !== undefined && last.ins !== undefined) last.ins += op.ins;
    else joined.push({ ...op });
  }
  return { splices, ops: joined };
}

/** Splices a text box made, each on the text as it showed it (`seen`: the box's text
 *  before that splice), carried onto `now`, the text as others left it: the splices to run
 *  on `now`, in order ({index, del, ins}). Others' edits are diffed once and then carried
 *  along by each of the box's own splices (a new diff of the next `seen` could line
 *  repeated letters up differently, and split a word typed across keystrokes). Throws on a
 *  splice outside its `seen`. */
export function carrySplices(now, edits) {
  const out = [];
  let ops = null, expected = null;
  edits.forEach(({ seen, index, deleteCount, text }, i) => {
    if (typeof seen !== "string" || typeof text !== "string"
      || !Number.isInteger(index) || !Number.isInteger(deleteCount)
      || index < 0 || deleteCount < 0 || index + deleteCount > seen.length) {
      throw new RangeError(`splice ${i}: expected {seen, index, deleteCount, text} with 0 <= index <= index + deleteCount <= seen.length`);
    }
    if (ops === null || seen !== expected) ops = align(seen, now);
    const carried = spliceThrough(ops, index, deleteCount, text);
    for (const s of carried.splices) {
      out.push(s);
      now = now.slice(0, s.index) + s.ins + now.slice(s.index + s.del);
    }
    ops = carried.ops;
    expected = seen.slice(0, index) + text + seen.slice(index + deleteCount);
  });
  return out;
}

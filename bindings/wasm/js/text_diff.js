// Text diffs for a text box bound to a store's text (UTF-16 units, as JS strings count):
// the one region where two texts differ, and where a position moves across it. Used by the
// Worker (`spliceTextSeen`) and exported to pages (`concord.js`).

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

/** Where position `pos` of a text lies once the diff `d` is applied to it; a position
 *  inside the replaced text goes to its start (`toEnd`: its end). */
export function carryPos(pos, d, toEnd) {
  if (pos <= d.index) return pos;
  if (pos >= d.index + d.del) return pos - d.del + d.ins.length;
  return toEnd ? d.index + d.ins.length : d.index;
}

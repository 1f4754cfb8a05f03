// A JS merge function for the browser test (loaded in the Worker by `mergeModule`): of
// concurrent values, show the longest text.
export function longest(_path, values) {
  return values.map((v) => v.value).sort((a, b) => String(b).length - String(a).length)[0];
}

//! The types of a Yrs document's roots. Yrs updates and saved states carry a root's name
//! but not its type: a reader declares it (`get_or_insert_text`, `_map`, `_array`). Roots
//! that arrive undeclared get the type their content implies ([`define_roots`]); a
//! checkpoint records the types its document had ([`root_types`]), and loading it
//! declares them first ([`declare_roots`]), so a reopened document reads each root as it
//! was written. Guessing from content cannot tell a text whose characters were all
//! deleted from an empty array, and it walks the whole root to look (Yrs builds the
//! text's full delta), which was 3% of a cold open of a long text. Only what the guess
//! cannot get wrong later is recorded (see [`root_types`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use yrs::branch::BranchPtr;
use yrs::{
    Array, ArrayRef, Doc, GetString, In, Map, MapRef, Out, ReadTxn, TextRef, Transact,
    TransactionMut, WriteTxn,
};

/// The record of `doc`'s root types: a JSON object of root name to `"text"`, `"map"` or
/// `"array"`; `None` when it has none to record.
///
/// Left out: roots of any other type, and an array that holds no items or holds text. A
/// text whose characters were all deleted before it reached this device without a
/// declaration was guessed an array ([`define_roots`]); recorded, that guess would be
/// declared at every load, and text typed into it later would stay inside an array for
/// good. Left out, the next load guesses again from the content, which by then may say
/// text. A text is never guessed wrongly (only text content makes the guess), and a map's
/// content cannot be a text's or an array's (the relay refuses sequence items in a map).
pub(super) fn root_types(doc: &Doc) -> Option<String> {
    let txn = doc.transact();
    let roots: BTreeMap<&str, &str> = txn
        .root_refs()
        .filter_map(|(name, out)| {
            let ty = match out {
                Out::YText(_) => "text",
                Out::YMap(_) => "map",
                Out::YArray(array) => {
                    let as_text = TextRef::from(BranchPtr::from(array.as_ref()));
                    if array.len(&txn) == 0 || !as_text.get_string(&txn).is_empty() {
                        return None;
                    }
                    "array"
                }
                _ => return None,
            };
            Some((name, ty))
        })
        .collect();
    if roots.is_empty() {
        return None;
    }
    Some(serde_json::to_string(&roots).expect("a map of strings serializes"))
}

/// Declares the roots recorded by [`root_types`] in `doc` (before a saved state is applied
/// to it). A record this build cannot read declares nothing: the roots then get the type
/// their content implies, as for a checkpoint written before types were recorded.
pub(super) fn declare_roots(doc: &Doc, roots: &str) {
    let Ok(roots) = serde_json::from_str::<BTreeMap<String, String>>(roots) else {
        return;
    };
    if roots
        .values()
        .any(|ty| !matches!(ty.as_str(), "text" | "map" | "array"))
    {
        return;
    }
    let mut txn = doc.transact_mut();
    for (name, ty) in roots {
        match ty.as_str() {
            "text" => {
                txn.get_or_insert_text(name);
            }
            "array" => {
                txn.get_or_insert_array(name);
            }
            _ => {
                txn.get_or_insert_map(name);
            }
        }
    }
}

/// Gives every root that arrived from a remote update without a local type declaration
/// the type its content implies, so reads see it as a map, array or text.
pub(super) fn define_roots(txn: &mut TransactionMut<'_>) {
    let undefined: Vec<(Arc<str>, Guess)> = txn
        .root_refs()
        .filter_map(|(name, out)| match out {
            Out::UndefinedRef(branch) => Some((Arc::from(name), guess(branch, txn))),
            _ => None,
        })
        .collect();
    for (name, guess) in undefined {
        match guess {
            Guess::Text => {
                txn.get_or_insert_text(name);
            }
            Guess::Array => {
                txn.get_or_insert_array(name);
            }
            Guess::Map => {
                txn.get_or_insert_map(name);
            }
        }
    }
}

/// The type a root's content implies.
enum Guess {
    Map,
    Array,
    Text,
}

/// Yrs's own inference (`AsPrelim` of an undefined branch) as far as the three root types
/// go, without its copy of the whole root when the root holds shared types: that copy
/// recurses into every nested map and array, and a root nested a hundred thousand deep
/// (one update of a few MiB) overflowed the applying thread's stack, on a device or on the
/// relay. Live map entries make a map (with or without list content, Yrs guesses a map or
/// an XML type, read as a map here); live characters make a text; list content holding a
/// shared type makes an array. Anything else (no live content; values, embeds or formats
/// only) is left to Yrs, whose copy of it then holds no shared type and does not recurse.
fn guess<T: ReadTxn>(branch: BranchPtr, txn: &T) -> Guess {
    if MapRef::from(branch).len(txn) > 0 {
        return Guess::Map;
    }
    if branch.len() > 0 || branch.content_len() > 0 {
        if !TextRef::from(branch).get_string(txn).is_empty() {
            return Guess::Text;
        }
        let nested = ArrayRef::from(branch)
            .iter(txn)
            .any(|out| !matches!(out, Out::Any(_)));
        if nested {
            return Guess::Array;
        }
    }
    match yrs::types::AsPrelim::as_prelim(&Out::UndefinedRef(branch), txn) {
        In::Text(_) => Guess::Text,
        In::Array(_) => Guess::Array,
        _ => Guess::Map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Map, Text};

    /// The root `name` of `doc`, as its type is now.
    fn root_of(doc: &Doc, name: &str) -> Option<Out> {
        doc.transact()
            .root_refs()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| o)
    }

    /// Roots that arrive undeclared get the type Yrs itself infers, whether or not they
    /// hold shared types (whose copy Yrs's inference would make by recursion).
    #[test]
    fn undeclared_roots_get_the_type_their_content_implies() {
        use yrs::{Any, ArrayPrelim, MapPrelim};
        let src = Doc::new();
        {
            let mut txn = src.transact_mut();
            txn.get_or_insert_text("chars").insert(&mut txn, 0, "abc");
            let embeds = txn.get_or_insert_text("embeds");
            embeds.insert_embed(&mut txn, 0, Any::from(true));
            txn.get_or_insert_array("values").push_back(&mut txn, 1);
            let nested = txn.get_or_insert_array("nested");
            nested.push_back(&mut txn, 1);
            nested.push_back(&mut txn, MapPrelim::default());
            nested.push_back(&mut txn, ArrayPrelim::default());
            let map = txn.get_or_insert_map("map");
            map.insert(&mut txn, "k", MapPrelim::default());
        }
        let update = src
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        let copy = Doc::new();
        {
            let mut txn = copy.transact_mut();
            use yrs::updates::decoder::Decode;
            txn.apply_update(yrs::Update::decode_v1(&update).unwrap())
                .unwrap();
            define_roots(&mut txn);
        }
        let kind = |name: &str| match root_of(&copy, name) {
            Some(Out::YText(_)) => "text",
            Some(Out::YArray(_)) => "array",
            Some(Out::YMap(_)) => "map",
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(kind("chars"), "text");
        assert_eq!(kind("embeds"), "text");
        assert_eq!(kind("values"), "array");
        assert_eq!(kind("nested"), "array");
        assert_eq!(kind("map"), "map");
    }

    #[test]
    fn recorded_types_are_declared_before_the_content_arrives() {
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            let t = txn.get_or_insert_text("t");
            t.insert(&mut txn, 0, "abc");
            t.remove_range(&mut txn, 0, 3);
            txn.get_or_insert_array("a").push_back(&mut txn, 1);
            txn.get_or_insert_map("m").insert(&mut txn, "k", 2);
        }
        let roots = root_types(&doc).unwrap();
        assert_eq!(roots, r#"{"a":"array","m":"map","t":"text"}"#);
        let saved = doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());

        let load = |roots: Option<&str>| {
            let copy = Doc::new();
            if let Some(roots) = roots {
                declare_roots(&copy, roots);
            }
            let mut txn = copy.transact_mut();
            txn.apply_update(yrs::Update::decode_v1(&saved).unwrap())
                .unwrap();
            define_roots(&mut txn);
            drop(txn);
            copy
        };
        use yrs::updates::decoder::Decode;
        let declared = load(Some(&roots));
        let txn = declared.transact();
        assert_eq!(txn.get_text("t").unwrap().get_string(&txn), "");
        assert_eq!(txn.get_array("a").unwrap().len(&txn), 1);
        assert_eq!(txn.get_map("m").unwrap().len(&txn), 1);
        drop(txn);
        // By content alone, the emptied text looks like an empty array.
        let guessed = load(None);
        let out = root_of(&guessed, "t");
        assert!(matches!(out, Some(Out::YArray(_))), "{out:?}");
        // An unreadable record declares nothing.
        let unreadable = load(Some(r#"{"t":"widget"}"#));
        let out = root_of(&unreadable, "t");
        assert!(matches!(out, Some(Out::YArray(_))), "{out:?}");
    }
}

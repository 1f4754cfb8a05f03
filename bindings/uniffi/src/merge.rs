//! `MergeFunction`: the `merge` conflict policy's function, implemented in Kotlin, Swift or
//! Python (a uniffi foreign trait), and its adapter to core's `MergeFunction`.

use std::sync::Arc;

use concord_core::{ConcurrentValue as CoreConcurrent, PlainValue};

use crate::types::ConcurrentValue;
use crate::value::Value;

/// Computes the value shown at a path that holds several concurrent values, oldest first.
/// It must be deterministic and depend on its input only (every device calls it on the same
/// values and must show the same result); map entries carry no order. Called on the thread
/// that reads the value. If it throws, that read fails with `ConcordError.Panic`.
#[uniffi::export(foreign)]
pub trait MergeFunction: Send + Sync {
    fn merge(&self, path: String, values: Vec<ConcurrentValue>) -> Value;
}

/// A host merge function as core's merge function.
pub(crate) struct HostMerge(pub Arc<dyn MergeFunction>);

impl concord_core::MergeFunction for HostMerge {
    fn merge(&self, path: String, values: Vec<CoreConcurrent>) -> PlainValue {
        let values = values
            .into_iter()
            .map(|c| ConcurrentValue {
                value: c.value.into(),
                origin: c.origin,
                hlc: c.hlc.into(),
            })
            .collect();
        self.0.merge(path, values).into()
    }
}

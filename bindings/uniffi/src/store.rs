//! `Store`: the device's SQLite file of documents — opening it (with the app's merge
//! functions), creating and listing documents, status, and listeners for every document.
//! Sync lives in `sync.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use concord_core::{Reader, StoreOptions};

use crate::callbacks::{listen, ChangeListener, Dispatcher, Subscription};
use crate::document::Document;
use crate::error::{guard, ConcordError};
use crate::merge::{HostMerge, MergeFunction};
use crate::sync::Running;
use crate::types::{version_map, DocumentInfo, DocumentKind, DocumentStatus};

/// What a store's objects share.
pub(crate) struct Shared {
    pub(crate) store: concord_core::Store,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) sync: Mutex<Option<Running>>,
}

/// An open device store (one SQLite file). Usable from any thread.
#[derive(uniffi::Object)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

#[uniffi::export]
impl Store {
    /// Opens (or creates) the store in the SQLite file at `path`.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Store>, ConcordError> {
        Store::open_with_merge_functions(path, HashMap::new())
    }

    /// Opens the store with the app's merge functions, by name (for `Policy.Merge(name)`).
    /// Every device must register the same functions to show the same values.
    #[uniffi::constructor]
    pub fn open_with_merge_functions(
        path: String,
        merge_functions: HashMap<String, Arc<dyn MergeFunction>>,
    ) -> Result<Arc<Store>, ConcordError> {
        guard(|| {
            let reader = merge_functions
                .into_iter()
                .fold(Reader::default(), |reader, (name, f)| {
                    reader.with_merge_function(&name, Arc::new(HostMerge(f)))
                });
            let options = StoreOptions {
                reader,
                ..StoreOptions::default()
            };
            let store = concord_core::Store::open_with(&path, options)?;
            Ok(Arc::new(Store {
                shared: Arc::new(Shared {
                    store,
                    dispatcher: Dispatcher::new(),
                    sync: Mutex::new(None),
                }),
            }))
        })
    }

    /// This device's id (the origin of the updates it authors).
    pub fn device_id(&self) -> String {
        self.shared.store.device_id().as_str().to_string()
    }

    /// Creates an empty document; `AlreadyExists` if the id is taken.
    pub fn create_document(
        &self,
        id: String,
        kind: DocumentKind,
    ) -> Result<Arc<Document>, ConcordError> {
        guard(|| {
            self.shared.store.create_doc(&id, kind.into())?;
            Ok(Arc::new(Document::new(self.shared.clone(), id, kind)))
        })
    }

    /// The document `id`; `NotFound` if this store does not have it (yet).
    pub fn document(&self, id: String) -> Result<Arc<Document>, ConcordError> {
        guard(|| match self.shared.store.doc_kind(&id)? {
            Some(kind) => Ok(Arc::new(Document::new(
                self.shared.clone(),
                id,
                kind.into(),
            ))),
            None => Err(ConcordError::NotFound {
                detail: format!("no document {id:?} in this store"),
            }),
        })
    }

    /// Every document, by id.
    pub fn list_documents(&self) -> Result<Vec<DocumentInfo>, ConcordError> {
        guard(|| {
            Ok(self
                .shared
                .store
                .list_docs()?
                .into_iter()
                .map(|d| DocumentInfo {
                    id: d.id,
                    kind: d.kind.into(),
                })
                .collect())
        })
    }

    /// Every document's version vector and pending (unacknowledged) local updates.
    pub fn status(&self) -> Result<Vec<DocumentStatus>, ConcordError> {
        guard(|| {
            Ok(self
                .shared
                .store
                .status()?
                .into_iter()
                .map(|d| DocumentStatus {
                    version: version_map(&d.version),
                    pending: d.pending as u64,
                    id: d.id,
                    kind: d.kind.into(),
                })
                .collect())
        })
    }

    /// Calls `listener` (on a background thread) after every change of any document.
    pub fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Arc<Subscription> {
        listen(&self.shared.store, None, &self.shared.dispatcher, listener)
    }
}

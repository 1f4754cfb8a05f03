//! The cluster's binary encoding (postcard): consensus log entries and metadata in
//! `raft.db`, and the bodies of node-to-node calls (`application/octet-stream`). Update
//! bytes stay bytes (JSON would spell each one as a number). Operator endpoints speak JSON.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The content type of encoded bodies.
pub const CONTENT_TYPE: &str = "application/octet-stream";

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// A request or response body in the cluster's encoding.
pub struct Binary<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Binary<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        decode(&bytes).map(Binary).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("body does not decode: {e}"),
            )
                .into_response()
        })
    }
}

impl<T: Serialize> IntoResponse for Binary<T> {
    fn into_response(self) -> Response {
        match encode(&self.0) {
            Ok(bytes) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("answer does not encode: {e}"),
            )
                .into_response(),
        }
    }
}

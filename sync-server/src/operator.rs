//! The operator's side of the cluster endpoints, for `concord-server cluster ...`: one
//! authenticated HTTP call to a node's cluster port, its JSON answer or a clear error.

use std::time::Duration;

use serde::Serialize;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} refused (HTTP {status}): {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

/// Calls `path` on the node whose cluster port is `node` (`http://host:port` or
/// `host:port`): a POST with `body`, or a GET without one.
pub async fn call<T: Serialize>(
    node: &str,
    secret: &str,
    path: &str,
    body: Option<&T>,
) -> Result<serde_json::Value, OperatorError> {
    let base = if node.contains("://") {
        node.trim_end_matches('/').to_string()
    } else {
        format!("http://{node}")
    };
    let url = format!("{base}{path}");
    let client = reqwest::Client::new();
    let request = match body {
        Some(body) => client.post(&url).json(body),
        None => client.get(&url),
    };
    let unreachable = |source| OperatorError::Unreachable {
        url: url.clone(),
        source,
    };
    let response = request
        .bearer_auth(secret)
        .timeout(Duration::from_secs(180))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let text = response.text().await.map_err(unreachable)?;
    if !status.is_success() {
        return Err(OperatorError::Refused {
            url,
            status: status.as_u16(),
            body: text,
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

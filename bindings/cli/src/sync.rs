//! `concord sync`: exchange updates with a relay, once or continuously (`--watch`).
//!
//! A one-shot sync runs `concord_core::native_client::sync_once` (connect, send what the relay
//! lacks, fetch what this device lacks, wait for every acknowledgement, disconnect) and
//! prints what changed. `--watch` keeps a `SyncClient` running in the background,
//! reconnecting on its own, and prints a line per document change and per connection
//! change until Ctrl-C or SIGTERM.
//!
//! Exit codes (also in `concord sync --help`): 0 all synced; 1 error; 2 usage error;
//! [`EXIT_PARTLY_REFUSED`] (3) when the relay refused some documents and synced the others.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use concord_core::native_client::{sync_once, Backoff, ClientError, PeerState, SyncClient};
use concord_core::sync::{ClientConfig, SyncScope};
use concord_core::{ChangeEvent, ChangeSource, Store, VersionVector};
use serde_json::json;
use tokio::sync::mpsc;

use crate::output::{self, Output};

/// Exit code of a one-shot sync that synced some documents while the relay refused others.
pub const EXIT_PARTLY_REFUSED: u8 = 3;

/// The `after_help` of `concord sync`.
pub const SYNC_HELP: &str = "\
Exit status:
  0  everything synced
  1  error (relay unreachable; token missing, invalid or expired; timeout); with --watch:
     the relay refused the connection for good (e.g. the token expired)
  2  usage error
  3  synced, but the relay refused some documents (e.g. outside the token's scope): they
     are listed on stderr (and under \"refused\" with --json) and stay pending";

/// The exit code for an error `run` returned, when it is not the usual 1.
pub fn exit_code(e: &anyhow::Error) -> Option<u8> {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::DocumentsRefused(_)) => Some(EXIT_PARTLY_REFUSED),
        _ => None,
    }
}

#[derive(clap::Args)]
pub struct SyncArgs {
    /// The relay's address: ws://host:port[/sync] (http://, https:// and a bare host:port
    /// work too). For a relay cluster, give every node: repeat the option or separate the
    /// URLs with commas (`--server A,B,C`); the client rotates through them with backoff.
    #[arg(
        long,
        env = "CONCORD_SERVER",
        default_value = "ws://127.0.0.1:8787",
        value_name = "URL",
        value_delimiter = ','
    )]
    server: Vec<String>,
    /// Access token, when the relay requires one (`concord-server token ...`).
    #[arg(long, env = "CONCORD_TOKEN", hide_env_values = true, value_name = "T")]
    token: Option<String>,
    /// Keep syncing until Ctrl-C, printing a line per change and connection event. Stops
    /// with exit code 1 when the relay refuses the token (e.g. it expired).
    #[arg(long)]
    watch: bool,
    /// Give up a one-shot sync after this many seconds.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECS",
        conflicts_with = "watch"
    )]
    timeout: u64,
    /// Also fetch every document on the relay whose id starts with P (default: all
    /// documents the token can read). Local documents are always synced.
    #[arg(long, default_value = "", value_name = "P")]
    prefix: String,
}

pub fn run(store: &Store, out: &Output, args: SyncArgs) -> anyhow::Result<()> {
    let urls: Vec<String> = args
        .server
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(relay_url)
        .collect();
    anyhow::ensure!(!urls.is_empty(), "--server needs at least one relay URL");
    let config = ClientConfig {
        token: args.token.clone(),
        scope: SyncScope::Prefix(args.prefix.clone()),
        ..ClientConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.watch {
        runtime.block_on(watch(store, out, urls, config))
    } else {
        let timeout = Duration::from_secs(args.timeout);
        runtime.block_on(once(store, out, &urls, config, timeout))
    }
}

/// Accepts `ws://`, `wss://`, `http://`, `https://` or no scheme; adds the `/sync` path
/// when none is given.
fn relay_url(raw: &str) -> String {
    let raw = raw.trim();
    let (scheme, rest) = match raw.split_once("://") {
        Some(("http", rest)) => ("ws", rest),
        Some(("https", rest)) => ("wss", rest),
        Some((scheme, rest)) => (scheme, rest),
        None => ("ws", raw),
    };
    if rest.contains('/') {
        format!("{scheme}://{rest}")
    } else {
        format!("{scheme}://{rest}/sync")
    }
}

async fn once(
    store: &Store,
    out: &Output,
    urls: &[String],
    config: ClientConfig,
    timeout: Duration,
) -> anyhow::Result<()> {
    let url = urls.join(",");
    let before = versions(store)?;
    let refused = match sync_once(store, urls, config, timeout).await {
        Ok(()) => Vec::new(),
        // Partial success: report what synced, then fail with the refusals (exit code 3).
        Err(ClientError::DocumentsRefused(refused)) => refused,
        Err(ClientError::Timeout(_)) => anyhow::bail!(
            "sync with {url} did not finish within {}s (is a Concord relay listening \
             there? a large first sync may need a longer --timeout)",
            timeout.as_secs()
        ),
        Err(other) => return Err(anyhow::Error::new(other).context("sync failed")),
    };
    let after = versions(store)?;

    let is_refused = |id: &str| refused.iter().any(|e| e.doc_id.as_deref() == Some(id));
    let synced: Vec<&str> = after
        .keys()
        .map(String::as_str)
        .filter(|id| !is_refused(id))
        .collect();
    let new: Vec<&str> = after
        .keys()
        .filter(|id| !before.contains_key(*id))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = after
        .iter()
        .filter(|(id, (version, _))| before.get(*id).is_some_and(|(old, _)| old != version))
        .map(|(id, _)| id.as_str())
        .collect();
    let pending_before: usize = before.values().map(|(_, p)| p).sum();
    let pending: usize = after.values().map(|(_, p)| p).sum();
    let sent = pending_before.saturating_sub(pending);
    let mut text = format!(
        "synced {} document{} with {url}: sent {sent} update{}, {} new, {} changed; {pending} pending",
        synced.len(),
        plural(synced.len()),
        plural(sent),
        new.len(),
        changed.len(),
    );
    if !refused.is_empty() {
        let ids: Vec<&str> = refused.iter().filter_map(|e| e.doc_id.as_deref()).collect();
        text.push_str(&format!("; refused: {}", ids.join(", ")));
    }
    out.result(Some(&text), || {
        json!({
            "server": url,
            "documents": synced.len(),
            "synced": synced,
            "refused": refused.iter().map(|e| json!({
                "doc": e.doc_id,
                "code": e.code.name(),
                "code_number": e.code.number(),
                "message": e.message,
            })).collect::<Vec<_>>(),
            "sent": sent,
            "new": new,
            "changed": changed,
            "pending": pending,
        })
    })?;
    if refused.is_empty() {
        Ok(())
    } else {
        // Exit code 3 (see `exit_code`); main prints the refusals on stderr.
        Err(ClientError::DocumentsRefused(refused).into())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Each document's version vector and pending count.
fn versions(store: &Store) -> anyhow::Result<BTreeMap<String, (VersionVector, usize)>> {
    Ok(store
        .status()?
        .into_iter()
        .map(|d| (d.id, (d.version, d.pending)))
        .collect())
}

async fn watch(
    store: &Store,
    out: &Output,
    urls: Vec<String>,
    config: ClientConfig,
) -> anyhow::Result<()> {
    let url = urls.join(",");
    let (tx, mut changes) = mpsc::unbounded_channel::<ChangeEvent>();
    let _subscription = store.subscribe(None, move |event| {
        let _ = tx.send(event.clone());
    });
    let client = SyncClient::spawn(store.clone(), urls, config, Backoff::default());
    let mut presence = client.presence_changes();
    let mut present: HashMap<String, BTreeMap<u64, String>> = HashMap::new();
    let mut stop = Box::pin(shutdown_signal());
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    // (connected, last error) as last printed.
    let mut shown: (bool, Option<String>) = (false, None);
    out.result(
        Some(&format_args!("watching {url} (Ctrl-C to stop)")),
        || json!({ "event": "watching", "server": url }),
    )?;
    loop {
        tokio::select! {
            Some(event) = changes.recv() => {
                // A change arrives over a connection: report the connection first.
                report_connection(out, &url, &client, &mut shown)?;
                print_change(store, out, &event)?;
            }
            Some((doc, peers)) = presence.recv() => {
                report_connection(out, &url, &client, &mut shown)?;
                print_presence(out, &mut present, doc, peers)?;
            }
            _ = poll.tick() => report_connection(out, &url, &client, &mut shown)?,
            result = &mut stop => {
                result?;
                break;
            }
        }
        // The relay refused the connection for good (e.g. the token expired): the client
        // has stopped; say so and exit non-zero.
        if let Some(refusal) = client.status().stopped {
            report_connection(out, &url, &client, &mut shown)?;
            client.stop().await;
            return Err(anyhow::Error::new(ClientError::Refused(refusal))
                .context("sync --watch stopped (run it again with a new token)"));
        }
    }
    client.stop().await;
    out.result(Some(&"stopped"), || json!({ "event": "stopped" }))?;
    Ok(())
}

/// Prints who joined and who left `doc` (by the `name` in their presence state, else their
/// device), given who was there before (`present`, updated).
fn print_presence(
    out: &Output,
    present: &mut HashMap<String, BTreeMap<u64, String>>,
    doc: String,
    peers: Vec<PeerState>,
) -> anyhow::Result<()> {
    let now: BTreeMap<u64, String> = peers
        .iter()
        .map(|p| {
            let name = serde_json::from_slice::<serde_json::Value>(&p.state)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .unwrap_or_else(|| p.device_id.to_string());
            (p.peer, name)
        })
        .collect();
    let before = present.remove(&doc).unwrap_or_default();
    for (peer, name) in &now {
        if !before.contains_key(peer) {
            out.result(
                Some(&format_args!("{doc}: {name} joined")),
                || json!({ "event": "joined", "doc": doc, "peer": peer, "name": name }),
            )?;
        }
    }
    for (peer, name) in &before {
        if !now.contains_key(peer) {
            out.result(
                Some(&format_args!("{doc}: {name} left")),
                || json!({ "event": "left", "doc": doc, "peer": peer, "name": name }),
            )?;
        }
    }
    if !now.is_empty() {
        present.insert(doc, now);
    }
    Ok(())
}

fn print_change(store: &Store, out: &Output, event: &ChangeEvent) -> anyhow::Result<()> {
    let source = match event.source {
        ChangeSource::Local => "local",
        ChangeSource::Remote => "remote",
    };
    let pending = store.pending(&event.doc_id)?;
    out.result(
        Some(&format_args!(
            "{}: {source} change, version {}, {pending} pending",
            event.doc_id,
            output::version_text(&event.version)
        )),
        || {
            json!({
                "event": "change",
                "doc": event.doc_id,
                "source": source,
                "version": output::version_json(&event.version),
                "pending": pending,
            })
        },
    )?;
    Ok(())
}

/// Prints what changed in the client's connection since `shown` (connected, last error).
fn report_connection(
    out: &Output,
    url: &str,
    client: &SyncClient,
    shown: &mut (bool, Option<String>),
) -> anyhow::Result<()> {
    let status = client.status();
    let (connected, error) = (status.connected, status.last_error);
    let (was_connected, old_error) = &*shown;
    let error_changed = error.is_some() && error != *old_error;
    if connected && !was_connected {
        out.result(
            Some(&format_args!("connected to {url}")),
            || json!({ "event": "connected", "server": url }),
        )?;
    } else if connected && error_changed {
        // An error frame on a live connection (e.g. a refused document).
        let error = error.as_deref().unwrap_or_default();
        out.result(
            Some(&format_args!("relay error: {error}")),
            || json!({ "event": "error", "error": error }),
        )?;
    } else if let Some(refusal) = &status.stopped {
        if *was_connected || error_changed {
            out.result(
                Some(&format_args!(
                    "refused: {} ({}); stopping",
                    refusal.message,
                    refusal.code.name()
                )),
                || {
                    json!({
                        "event": "refused",
                        "code": refusal.code.name(),
                        "code_number": refusal.code.number(),
                        "message": refusal.message,
                    })
                },
            )?;
        }
    } else if !connected && (*was_connected || error_changed) {
        let error = error.as_deref().unwrap_or("connection closed");
        out.result(
            Some(&format_args!("disconnected: {error}; retrying")),
            || json!({ "event": "disconnected", "error": error, "retries": status.retries }),
        )?;
    }
    *shown = (connected, error);
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot watch for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::relay_url;

    #[test]
    fn relay_urls_get_a_websocket_scheme_and_path() {
        assert_eq!(relay_url("127.0.0.1:8787"), "ws://127.0.0.1:8787/sync");
        assert_eq!(relay_url("http://h:1"), "ws://h:1/sync");
        assert_eq!(relay_url("https://h"), "wss://h/sync");
        assert_eq!(relay_url("ws://h:1/"), "ws://h:1/");
        assert_eq!(relay_url("wss://h/x/sync"), "wss://h/x/sync");
    }
}

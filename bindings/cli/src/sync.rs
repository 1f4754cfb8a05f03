//! `concord sync`: exchange updates with a relay, once or continuously (`--watch`).
//!
//! A one-shot sync runs `concord_core::client::sync_once` (connect, send what the relay
//! lacks, fetch what this device lacks, wait for every acknowledgement, disconnect) and
//! prints what changed. `--watch` keeps a `SyncClient` running in the background,
//! reconnecting on its own, and prints a line per document change and per connection
//! change until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use concord_core::client::{sync_once, Backoff, ClientError, SyncClient};
use concord_core::sync::{ClientConfig, SyncScope};
use concord_core::{ChangeEvent, ChangeSource, Store, VersionVector};
use serde_json::json;
use tokio::sync::mpsc;

use crate::output::{self, Output};

#[derive(clap::Args)]
pub struct SyncArgs {
    /// The relay's address: ws://host:port[/sync] (http://, https:// and a bare host:port
    /// work too).
    #[arg(
        long,
        env = "CONCORD_SERVER",
        default_value = "ws://127.0.0.1:8787",
        value_name = "URL"
    )]
    server: String,
    /// Access token, when the relay requires one (`concord-server token ...`).
    #[arg(long, env = "CONCORD_TOKEN", hide_env_values = true, value_name = "T")]
    token: Option<String>,
    /// Keep syncing until Ctrl-C, printing a line per change and connection event.
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
    let url = relay_url(&args.server);
    let config = ClientConfig {
        token: args.token.clone(),
        scope: SyncScope::Prefix(args.prefix.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.watch {
        runtime.block_on(watch(store, out, url, config))
    } else {
        let timeout = Duration::from_secs(args.timeout);
        runtime.block_on(once(store, out, &url, config, timeout))
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
    url: &str,
    config: ClientConfig,
    timeout: Duration,
) -> anyhow::Result<()> {
    let before = snapshot(store)?;
    sync_once(store, url, config, timeout)
        .await
        .map_err(|e| match e {
            ClientError::Timeout(_) => anyhow::anyhow!(
                "sync with {url} did not finish within {}s (is a Concord relay listening \
                 there? a large first sync may need a longer --timeout)",
                timeout.as_secs()
            ),
            other => anyhow::Error::new(other).context("sync failed"),
        })?;
    let after = snapshot(store)?;

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
    let text = format!(
        "synced {} document{} with {url}: sent {sent} update{}, {} new, {} changed; {pending} pending",
        after.len(),
        plural(after.len()),
        plural(sent),
        new.len(),
        changed.len(),
    );
    out.result(Some(&text), || {
        json!({
            "server": url,
            "documents": after.len(),
            "sent": sent,
            "new": new,
            "changed": changed,
            "pending": pending,
        })
    })?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Each document's version vector and pending count.
fn snapshot(store: &Store) -> anyhow::Result<BTreeMap<String, (VersionVector, usize)>> {
    Ok(store
        .status()?
        .into_iter()
        .map(|d| (d.id, (d.version, d.pending)))
        .collect())
}

async fn watch(
    store: &Store,
    out: &Output,
    url: String,
    config: ClientConfig,
) -> anyhow::Result<()> {
    let (tx, mut changes) = mpsc::unbounded_channel::<ChangeEvent>();
    let _subscription = store.subscribe(None, move |event| {
        let _ = tx.send(event.clone());
    });
    let client = SyncClient::spawn(store.clone(), url.clone(), config, Backoff::default());
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
            _ = poll.tick() => report_connection(out, &url, &client, &mut shown)?,
            result = &mut stop => {
                result?;
                break;
            }
        }
    }
    client.stop().await;
    out.result(Some(&"stopped"), || json!({ "event": "stopped" }))?;
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

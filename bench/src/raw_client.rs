//! A raw protocol client for timing the relay: frames from `concord_core::protocol` over
//! tokio-tungstenite, no store and no driver. It says `Hello`, subscribes to one document,
//! then sends one `Updates` frame at a time and waits for the `Ack` covering it, or sends
//! a protocol `Ping` and waits for its `Pong`. Every wait is bounded.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use concord_core::protocol::{self, Hello, Message, Subscribe, Updates, PROTOCOL_VERSION};
use concord_core::{DocKind, Origin, UpdateRecord, VersionVector};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One connection to one node.
pub struct RawClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    limit: Duration,
    next_ping: u64,
}

impl RawClient {
    /// Connects, says `Hello` as `origin` and waits for `Welcome`; `limit` bounds every
    /// later wait too.
    pub async fn connect(url: &str, origin: &Origin, limit: Duration) -> Result<RawClient> {
        let (ws, _) = tokio::time::timeout(
            limit,
            // Nagle off: one small frame per round trip.
            tokio_tungstenite::connect_async_with_config(url, None, true),
        )
        .await
        .map_err(|_| anyhow!("connecting to {url}: no answer within {limit:?}"))?
        .with_context(|| format!("connecting to {url}"))?;
        let mut client = RawClient {
            ws,
            limit,
            next_ping: 1,
        };
        client
            .send(Message::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                device_id: origin.clone(),
                token: None,
            }))
            .await?;
        client
            .until(|m| matches!(m, Message::Welcome(_)).then_some(()))
            .await
            .context("waiting for Welcome")?;
        Ok(client)
    }

    /// Subscribes to `doc` with an empty version and waits for its `Catchup`.
    pub async fn subscribe(&mut self, doc: &str, kind: DocKind) -> Result<()> {
        self.send(Message::Subscribe(Subscribe {
            doc_id: doc.to_string(),
            kind,
            version: VersionVector::new(),
            min_lsn: 0,
            linearizable: false,
        }))
        .await?;
        self.until(|m| matches!(m, Message::Catchup(c) if c.doc_id == doc).then_some(()))
            .await
            .with_context(|| format!("waiting for the Catchup of {doc}"))
    }

    /// Sends one update of `doc` and waits for the `Ack` covering it; returns the ack's LSN.
    pub async fn write(&mut self, doc: &str, update: &UpdateRecord) -> Result<u64> {
        self.send(Message::Updates(Updates {
            doc_id: doc.to_string(),
            updates: vec![update.clone()],
            lsn: 0,
        }))
        .await?;
        let (origin, seq) = (&update.origin, update.seq);
        self.until(|m| match m {
            Message::Ack(a) if a.doc_id == doc && &a.origin == origin && a.upto >= seq => {
                Some(a.lsn)
            }
            _ => None,
        })
        .await
        .with_context(|| format!("waiting for the Ack of {doc} seq {seq}"))
    }

    /// One protocol round trip (`Ping` → `Pong`) through the relay's session, no storage.
    pub async fn ping(&mut self) -> Result<Duration> {
        let n = self.next_ping;
        self.next_ping += 1;
        let t = Instant::now();
        self.send(Message::Ping(n)).await?;
        self.until(|m| matches!(m, Message::Pong(k) if *k == n).then_some(()))
            .await
            .context("waiting for Pong")?;
        Ok(t.elapsed())
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.limit, self.ws.close(None)).await;
    }

    async fn send(&mut self, message: Message) -> Result<()> {
        let frame = WsMessage::Binary(protocol::encode(&message).into());
        tokio::time::timeout(self.limit, self.ws.send(frame))
            .await
            .map_err(|_| anyhow!("sending: blocked for {:?}", self.limit))?
            .context("sending a frame")
    }

    /// Reads frames until `want` picks one (answering the relay's pings); an `Error` frame,
    /// a close or `limit` without it fails.
    async fn until<T>(&mut self, mut want: impl FnMut(&Message) -> Option<T>) -> Result<T> {
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => bail!("no answer within {:?}", self.limit),
                Ok(None) => bail!("connection closed"),
                Ok(Some(frame)) => frame.context("reading a frame")?,
            };
            let WsMessage::Binary(bytes) = frame else {
                continue;
            };
            let message = protocol::decode(&bytes).context("decoding a frame")?;
            if let Some(found) = want(&message) {
                return Ok(found);
            }
            match message {
                Message::Error(e) => bail!("relay error {}: {}", e.code.name(), e.message),
                Message::Ping(n) => self.send(Message::Pong(n)).await?,
                _ => {}
            }
        }
    }
}

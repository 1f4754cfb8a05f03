//! automerge-repo's wire messages (its WebSocket network adapter): one CBOR map per binary
//! frame with a `type` — `join` / `peer` (the handshake), `request` and `sync` (Automerge
//! sync messages for one `documentId`), `doc-unavailable`, `ephemeral`, `error`, and the
//! remote-heads messages, which this relay does not use. Decoding keeps the fields the relay
//! needs; encoding writes what the JS client expects.

use ciborium::Value;

/// A message from an automerge-repo client, as far as the relay reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum FromClient {
    Join {
        sender_id: String,
    },
    /// `request` (the client wants the document) or `sync` (it may have changes).
    Sync {
        request: bool,
        sender_id: String,
        document_id: String,
        data: Vec<u8>,
    },
    /// Ephemeral data for the document's other peers (presence, cursors), relayed as is.
    Ephemeral {
        document_id: String,
        raw: Value,
    },
    /// Anything else with a `type` (remote heads, doc-unavailable from a client).
    Other(String),
}

/// Why a frame is not an automerge-repo message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not CBOR: {0}")]
    Cbor(String),
    #[error("not a map with a string `type`")]
    NoType,
    #[error("a {kind} message without {field}")]
    Missing { kind: String, field: &'static str },
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
}

fn text(map: &[(Value, Value)], kind: &str, name: &'static str) -> Result<String, WireError> {
    field(map, name)
        .and_then(|v| v.as_text())
        .map(str::to_string)
        .ok_or(WireError::Missing {
            kind: kind.to_string(),
            field: name,
        })
}

fn bytes(map: &[(Value, Value)], kind: &str, name: &'static str) -> Result<Vec<u8>, WireError> {
    let value = field(map, name).ok_or(WireError::Missing {
        kind: kind.to_string(),
        field: name,
    })?;
    match value {
        Value::Bytes(b) => Ok(b.clone()),
        // A typed array may come tagged (RFC 8746, tag 64: uint8 array).
        Value::Tag(_, inner) => match inner.as_ref() {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err(WireError::Missing {
                kind: kind.to_string(),
                field: name,
            }),
        },
        _ => Err(WireError::Missing {
            kind: kind.to_string(),
            field: name,
        }),
    }
}

/// Decodes one frame from a client.
pub fn decode(frame: &[u8]) -> Result<FromClient, WireError> {
    let value: Value = ciborium::from_reader(frame).map_err(|e| WireError::Cbor(e.to_string()))?;
    let Value::Map(map) = &value else {
        return Err(WireError::NoType);
    };
    let kind = field(map, "type")
        .and_then(|v| v.as_text())
        .ok_or(WireError::NoType)?
        .to_string();
    Ok(match kind.as_str() {
        "join" => FromClient::Join {
            sender_id: text(map, &kind, "senderId")?,
        },
        "request" | "sync" => FromClient::Sync {
            request: kind == "request",
            sender_id: text(map, &kind, "senderId")?,
            document_id: text(map, &kind, "documentId")?,
            data: bytes(map, &kind, "data")?,
        },
        "ephemeral" => FromClient::Ephemeral {
            document_id: text(map, &kind, "documentId")?,
            raw: value.clone(),
        },
        _ => FromClient::Other(kind),
    })
}

fn encode(entries: Vec<(&str, Value)>) -> Vec<u8> {
    let map = Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Text(k.to_string()), v))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).expect("CBOR into a Vec cannot fail");
    out
}

/// The answer to `join`: the relay is peer `server_peer`, speaking protocol version 1.
pub fn peer(server_peer: &str, target: &str) -> Vec<u8> {
    encode(vec![
        ("type", Value::Text("peer".into())),
        ("senderId", Value::Text(server_peer.into())),
        (
            "peerMetadata",
            Value::Map(vec![(
                Value::Text("isEphemeral".into()),
                Value::Bool(false),
            )]),
        ),
        ("selectedProtocolVersion", Value::Text("1".into())),
        ("targetId", Value::Text(target.into())),
    ])
}

/// An Automerge sync message for `document_id`.
pub fn sync(server_peer: &str, target: &str, document_id: &str, data: Vec<u8>) -> Vec<u8> {
    encode(vec![
        ("type", Value::Text("sync".into())),
        ("senderId", Value::Text(server_peer.into())),
        ("targetId", Value::Text(target.into())),
        ("documentId", Value::Text(document_id.into())),
        ("data", Value::Bytes(data)),
    ])
}

/// The relay does not hold `document_id` (and the client may not create it here).
pub fn doc_unavailable(server_peer: &str, target: &str, document_id: &str) -> Vec<u8> {
    encode(vec![
        ("type", Value::Text("doc-unavailable".into())),
        ("senderId", Value::Text(server_peer.into())),
        ("targetId", Value::Text(target.into())),
        ("documentId", Value::Text(document_id.into())),
    ])
}

/// An error the client logs (e.g. a refused token) before the relay closes the socket.
pub fn error(server_peer: &str, target: &str, message: &str) -> Vec<u8> {
    encode(vec![
        ("type", Value::Text("error".into())),
        ("senderId", Value::Text(server_peer.into())),
        ("message", Value::Text(message.into())),
        ("targetId", Value::Text(target.into())),
    ])
}

/// An ephemeral message of another peer, re-addressed to `target`.
pub fn readdressed(raw: &Value, target: &str) -> Vec<u8> {
    let mut raw = raw.clone();
    if let Value::Map(map) = &mut raw {
        map.retain(|(k, _)| k.as_text() != Some("targetId"));
        map.push((Value::Text("targetId".into()), Value::Text(target.into())));
    }
    let mut out = Vec::new();
    ciborium::into_writer(&raw, &mut out).expect("CBOR into a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_the_decoder() {
        let frame = sync("server", "client", "doc1", vec![1, 2, 3]);
        let FromClient::Sync {
            request,
            sender_id,
            document_id,
            data,
        } = decode(&frame).unwrap()
        else {
            panic!("a sync message")
        };
        assert!(!request);
        assert_eq!(
            (sender_id.as_str(), document_id.as_str()),
            ("server", "doc1")
        );
        assert_eq!(data, vec![1, 2, 3]);
        assert!(matches!(decode(&peer("s", "c")).unwrap(), FromClient::Other(k) if k == "peer"));
        assert!(decode(&[0xff, 0x00]).is_err());
        assert!(matches!(
            decode(&doc_unavailable("s", "c", "d")).unwrap(),
            FromClient::Other(_)
        ));
    }
}

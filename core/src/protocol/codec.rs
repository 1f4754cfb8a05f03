//! Encoding and decoding frames: `[version][tag][postcard body]`.

use thiserror::Error;

use super::messages::*;
use super::{ErrorCode, PROTOCOL_VERSION};

/// Why a frame could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("empty frame")]
    Empty,
    #[error("frame is protocol version {0}, this peer speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u8),
    #[error("unknown message tag {0}")]
    UnknownMessage(u8),
    #[error("malformed {message} message: {reason}")]
    Malformed {
        message: &'static str,
        reason: String,
    },
}

impl CodecError {
    /// The error code a peer reports for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            CodecError::Empty | CodecError::Malformed { .. } => ErrorCode::MalformedFrame,
            CodecError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            CodecError::UnknownMessage(_) => ErrorCode::UnknownMessage,
        }
    }
}

macro_rules! codec {
    ($($tag:literal => $variant:ident($ty:ty),)*) => {
        /// Encodes one message as one frame.
        pub fn encode(message: &Message) -> Vec<u8> {
            let (tag, body) = match message {
                $(Message::$variant(m) => ($tag, postcard::to_allocvec(m)),)*
            };
            let body = body.expect("protocol messages always serialize");
            let mut frame = Vec::with_capacity(body.len() + 2);
            frame.push(PROTOCOL_VERSION);
            frame.push(tag);
            frame.extend_from_slice(&body);
            frame
        }

        /// Decodes one frame. The whole body must be consumed.
        pub fn decode(frame: &[u8]) -> Result<Message, CodecError> {
            let [version, tag, body @ ..] = frame else {
                return Err(if frame.is_empty() { CodecError::Empty } else {
                    CodecError::Malformed { message: "frame", reason: "shorter than its 2-byte header".into() }
                });
            };
            if *version != PROTOCOL_VERSION {
                return Err(CodecError::UnsupportedVersion(*version));
            }
            match tag {
                $($tag => {
                    let (m, rest) = postcard::take_from_bytes::<$ty>(body).map_err(|e| CodecError::Malformed {
                        message: stringify!($variant),
                        reason: e.to_string(),
                    })?;
                    if !rest.is_empty() {
                        return Err(CodecError::Malformed {
                            message: stringify!($variant),
                            reason: format!("{} trailing bytes", rest.len()),
                        });
                    }
                    Ok(Message::$variant(m))
                })*
                other => Err(CodecError::UnknownMessage(*other)),
            }
        }
    };
}

codec! {
    1 => Hello(Hello),
    2 => Welcome(Welcome),
    3 => Subscribe(Subscribe),
    4 => Catchup(Catchup),
    5 => Updates(Updates),
    6 => Ack(Ack),
    7 => Error(ErrorFrame),
    8 => Ping(u64),
    9 => Pong(u64),
    10 => ListDocs(ListDocs),
    11 => DocList(DocList),
    12 => Unsubscribe(Unsubscribe),
    13 => Presence(Presence),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DocKind, Origin};
    use crate::update::UpdateRecord;
    use crate::vv::VersionVector;

    fn samples() -> Vec<Message> {
        let vv: VersionVector = [(Origin::from("a"), 3)].into_iter().collect();
        vec![
            Message::Hello(Hello {
                protocol_version: 1,
                device_id: Origin::from("d"),
                token: Some("t".into()),
            }),
            Message::Welcome(Welcome {
                protocol_version: 1,
                server_id: "s".into(),
                max_frame_bytes: 10,
            }),
            Message::Subscribe(Subscribe {
                doc_id: "x".into(),
                kind: DocKind::Yrs,
                version: vv.clone(),
                min_lsn: 41,
                linearizable: true,
            }),
            Message::Catchup(Catchup {
                doc_id: "x".into(),
                kind: DocKind::Automerge,
                server_version: vv.clone(),
                snapshot: Some(CatchupSnapshot {
                    data: vec![1, 2, 3],
                    covers: vv.clone(),
                }),
                lsn: 300,
            }),
            Message::Updates(Updates {
                doc_id: "x".into(),
                updates: vec![UpdateRecord {
                    origin: Origin::from("a"),
                    seq: 1,
                    data: vec![9; 40],
                }],
                lsn: 1 << 40,
            }),
            Message::Ack(Ack {
                doc_id: "x".into(),
                origin: Origin::from("a"),
                upto: 7,
                lsn: u64::MAX,
            }),
            Message::error(ErrorCode::SeqGap, "gap", Some("x")),
            Message::Ping(5),
            Message::Pong(5),
            Message::ListDocs(ListDocs { prefix: "p".into() }),
            Message::DocList(DocList {
                docs: vec![("x".into(), DocKind::Yrs)],
            }),
            Message::Unsubscribe(Unsubscribe { doc_id: "x".into() }),
            Message::Presence(Presence {
                doc_id: "x".into(),
                peer: 7,
                device_id: Origin::from("d"),
                state: br#"{"name":"ann"}"#.to_vec(),
            }),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn the_log_positions_are_on_the_wire() {
        // Each LSN field is encoded (as the last field of its body): a frame differing only
        // in it differs in bytes, and the value comes back.
        for lsn in [0, 1, 127, 128, 1 << 33, u64::MAX] {
            let ack = Message::Ack(Ack {
                doc_id: "x".into(),
                origin: Origin::from("a"),
                upto: 2,
                lsn,
            });
            let frame = encode(&ack);
            assert_eq!(frame[0], 2, "protocol version 2");
            assert!(matches!(decode(&frame), Ok(Message::Ack(a)) if a.lsn == lsn));
            let sub = Message::Subscribe(Subscribe {
                doc_id: "x".into(),
                kind: DocKind::Automerge,
                version: VersionVector::new(),
                min_lsn: lsn,
                linearizable: lsn % 2 == 1,
            });
            assert!(
                matches!(decode(&encode(&sub)), Ok(Message::Subscribe(s)) if s.min_lsn == lsn && s.linearizable == (lsn % 2 == 1))
            );
            let updates = Message::Updates(Updates {
                doc_id: "x".into(),
                updates: vec![],
                lsn,
            });
            assert!(matches!(decode(&encode(&updates)), Ok(Message::Updates(u)) if u.lsn == lsn));
            let catchup = Message::Catchup(Catchup {
                doc_id: "x".into(),
                kind: DocKind::Yrs,
                server_version: VersionVector::new(),
                snapshot: None,
                lsn,
            });
            assert!(matches!(decode(&encode(&catchup)), Ok(Message::Catchup(c)) if c.lsn == lsn));
        }
        // A version-1 body (no LSN) does not pass as version 2.
        let mut old = encode(&Message::Ack(Ack {
            doc_id: "x".into(),
            origin: Origin::from("a"),
            upto: 2,
            lsn: 0,
        }));
        old.pop();
        assert!(matches!(decode(&old), Err(CodecError::Malformed { .. })));
        old[0] = 1;
        assert_eq!(decode(&old), Err(CodecError::UnsupportedVersion(1)));
    }

    #[test]
    fn bad_frames_are_classified() {
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[9, 1]), Err(CodecError::UnsupportedVersion(9)));
        assert_eq!(
            decode(&[PROTOCOL_VERSION, 200]),
            Err(CodecError::UnknownMessage(200))
        );
        assert!(matches!(
            decode(&[PROTOCOL_VERSION, 3, 0xff]),
            Err(CodecError::Malformed { .. })
        ));
        let mut frame = encode(&Message::Ping(1));
        frame.push(0);
        assert!(matches!(decode(&frame), Err(CodecError::Malformed { .. })));
        assert_eq!(
            decode(&[PROTOCOL_VERSION, 200]).unwrap_err().code(),
            ErrorCode::UnknownMessage
        );
    }
}

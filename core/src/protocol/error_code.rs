//! Error codes carried by `Error` frames: stable numbers with stable names.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($($name:ident = $num:literal, $text:literal;)*) => {
        /// Why a request was refused. Numbers are stable on the wire; an unknown number from
        /// a newer peer decodes as [`ErrorCode::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($name,)*
            Other(u16),
        }

        impl ErrorCode {
            pub fn number(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $num,)*
                    ErrorCode::Other(n) => n,
                }
            }

            pub fn from_number(n: u16) -> ErrorCode {
                match n {
                    $($num => ErrorCode::$name,)*
                    other => ErrorCode::Other(other),
                }
            }

            /// The snake_case name used in logs, docs and CLI output.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $text,)*
                    ErrorCode::Other(_) => "other",
                }
            }
        }
    };
}

error_codes! {
    MalformedFrame = 1, "malformed_frame";
    UnsupportedVersion = 2, "unsupported_version";
    UnknownMessage = 3, "unknown_message";
    FrameTooLarge = 4, "frame_too_large";
    HelloRequired = 5, "hello_required";
    Unauthorized = 10, "unauthorized";
    TokenExpired = 11, "token_expired";
    Forbidden = 12, "forbidden";
    InvalidDocId = 20, "invalid_doc_id";
    KindMismatch = 21, "kind_mismatch";
    NotSubscribed = 22, "not_subscribed";
    InvalidUpdate = 30, "invalid_update";
    SeqGap = 31, "seq_gap";
    SeqConflict = 32, "seq_conflict";
    MissingDependencies = 33, "missing_dependencies";
    SlowConsumer = 40, "slow_consumer";
    ReplicaBehind = 41, "replica_behind";
    Internal = 50, "internal";
    Unavailable = 51, "unavailable";
}

impl ErrorCode {
    /// True when the client recovers from this error by itself, by resyncing or
    /// reconnecting (`seq_conflict`: the device takes a new origin; `slow_consumer`: it
    /// reconnects and resyncs; `replica_behind`, `unavailable`: see
    /// [`ErrorCode::switches_node`]). Any other error refuses its request for good:
    /// retrying the same request cannot succeed until something changes (the token, the
    /// data).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::SeqConflict
                | ErrorCode::SlowConsumer
                | ErrorCode::ReplicaBehind
                | ErrorCode::Unavailable
        )
    }

    /// True when the node cannot serve the request now but another node (or this one,
    /// later) can: `replica_behind` (its state is older than the client's `min_lsn`, or it
    /// lags too far) and `unavailable` (no leader, or the write concern was not met in
    /// time). The client disconnects, backs off, and tries the next node URL; its outbox
    /// is resent there.
    pub fn switches_node(self) -> bool {
        matches!(self, ErrorCode::ReplicaBehind | ErrorCode::Unavailable)
    }

    /// True when the error refuses the connection as a whole and reconnecting with the
    /// same settings cannot succeed (`unauthorized`, `token_expired`,
    /// `unsupported_version`): a client stops instead of retrying, until it is given a new
    /// token (or a newer version).
    pub fn ends_session(self) -> bool {
        matches!(
            self,
            ErrorCode::Unauthorized | ErrorCode::TokenExpired | ErrorCode::UnsupportedVersion
        )
    }

    /// True when, in answer to the handshake, the error says one side cannot read the
    /// other's frames (`malformed_frame`, `unknown_message`, `frame_too_large`,
    /// `hello_required`, `unsupported_version`; from the relay, or from this client when the
    /// relay's answer does not decode): another protocol, or a proxy that mangles frames.
    /// The same `Hello` would fail again, so it ends the session too.
    pub fn refuses_handshake(self) -> bool {
        self.ends_session()
            || matches!(
                self,
                ErrorCode::MalformedFrame
                    | ErrorCode::UnknownMessage
                    | ErrorCode::FrameTooLarge
                    | ErrorCode::HelloRequired
            )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.number())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u16::deserialize(d).map(ErrorCode::from_number)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn only_credential_and_version_refusals_end_a_session() {
        for code in [
            ErrorCode::Unauthorized,
            ErrorCode::TokenExpired,
            ErrorCode::UnsupportedVersion,
        ] {
            assert!(code.ends_session(), "{code}");
            assert!(!code.is_retryable(), "{code}");
        }
        for code in [
            ErrorCode::SeqConflict,
            ErrorCode::SlowConsumer,
            ErrorCode::ReplicaBehind,
            ErrorCode::Unavailable,
        ] {
            assert!(code.is_retryable(), "{code}");
            assert!(!code.ends_session(), "{code}");
        }
        for code in [
            ErrorCode::Forbidden,
            ErrorCode::FrameTooLarge,
            ErrorCode::InvalidUpdate,
            ErrorCode::Other(999),
        ] {
            assert!(!code.ends_session() && !code.is_retryable(), "{code}");
        }
    }

    #[test]
    fn only_cluster_refusals_send_the_client_to_another_node() {
        assert_eq!(ErrorCode::ReplicaBehind.number(), 41);
        assert_eq!(ErrorCode::Unavailable.number(), 51);
        assert_eq!(ErrorCode::from_number(41), ErrorCode::ReplicaBehind);
        assert_eq!(ErrorCode::from_number(51), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::ReplicaBehind.name(), "replica_behind");
        assert_eq!(ErrorCode::Unavailable.name(), "unavailable");
        for code in [ErrorCode::ReplicaBehind, ErrorCode::Unavailable] {
            assert!(code.switches_node(), "{code}");
        }
        for code in [
            ErrorCode::SeqConflict,
            ErrorCode::SlowConsumer,
            ErrorCode::Internal,
            ErrorCode::Unauthorized,
            ErrorCode::Other(999),
        ] {
            assert!(!code.switches_node(), "{code}");
        }
    }
}

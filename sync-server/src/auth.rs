//! Access tokens: signed JWTs (HS256) naming document ids or id prefixes, a right
//! (`read` or `write`) and an expiry. Issued by `concord-server token`, checked on Hello.

use concord_core::protocol::ErrorCode;
use concord_core::sync::{RelayRefusal, Right, Rights};
use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

/// The claims of a Concord access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Who the token was issued to (free text, for logs).
    #[serde(default)]
    pub sub: String,
    /// Document ids, or prefixes ending in `*`.
    pub docs: Vec<String>,
    /// `"read"` or `"write"`.
    pub right: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// How connections are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// No secret configured: everything is allowed (loopback development default).
    Open,
    /// Every connection must present a token signed with this secret.
    Secret(Vec<u8>),
}

impl Auth {
    pub fn check(&self, token: Option<&str>) -> Result<Rights, RelayRefusal> {
        let secret = match self {
            Auth::Open => return Ok(Rights::open()),
            Auth::Secret(s) => s,
        };
        let token = token.ok_or_else(|| {
            RelayRefusal::new(
                ErrorCode::Unauthorized,
                "this server requires an access token",
            )
        })?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        let claims = decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    RelayRefusal::new(ErrorCode::TokenExpired, "the access token has expired")
                }
                _ => RelayRefusal::new(
                    ErrorCode::Unauthorized,
                    format!("invalid access token: {e}"),
                ),
            })?
            .claims;
        let right = match claims.right.as_str() {
            "read" => Right::Read,
            "write" => Right::Write,
            other => {
                return Err(RelayRefusal::new(
                    ErrorCode::Unauthorized,
                    format!("invalid right {other:?} in token"),
                ))
            }
        };
        Ok(Rights {
            scopes: claims.docs,
            right,
            expires_at: Some(claims.exp),
        })
    }
}

/// Signs a token.
pub fn issue(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(right: &str, exp: u64) -> Claims {
        Claims {
            sub: "t".into(),
            docs: vec!["a".into(), "p/*".into()],
            right: right.into(),
            exp,
        }
    }

    #[test]
    fn tokens_round_trip_and_are_checked() {
        let auth = Auth::Secret(b"s3cret".to_vec());
        let token = issue(b"s3cret", &claims("write", u64::MAX / 2)).unwrap();
        let rights = auth.check(Some(&token)).unwrap();
        assert!(rights.can_write("p/x") && !rights.can_read("b"));
        assert_eq!(auth.check(None).unwrap_err().code, ErrorCode::Unauthorized);
        let forged = issue(b"other", &claims("write", u64::MAX / 2)).unwrap();
        assert_eq!(
            auth.check(Some(&forged)).unwrap_err().code,
            ErrorCode::Unauthorized
        );
        let expired = issue(b"s3cret", &claims("write", 1000)).unwrap();
        assert_eq!(
            auth.check(Some(&expired)).unwrap_err().code,
            ErrorCode::TokenExpired
        );
        let bad_right = issue(b"s3cret", &claims("admin", u64::MAX / 2)).unwrap();
        assert_eq!(
            auth.check(Some(&bad_right)).unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }
}

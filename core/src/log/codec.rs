//! The stored form of a version vector (the `vv` column): postcard bytes.

use crate::error::{Error, Result};
use crate::vv::VersionVector;

/// The bytes stored for `vv`.
pub fn encode_version(vv: &VersionVector) -> Vec<u8> {
    postcard::to_allocvec(vv).expect("a version vector always encodes")
}

/// Reads stored bytes back; bytes that do not decode are [`Error::Corrupt`].
pub fn decode_version(bytes: &[u8]) -> Result<VersionVector> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt(format!("version vector: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Origin;

    #[test]
    fn a_version_vector_reads_back_and_garbage_is_corrupt() {
        let vv: VersionVector = [(Origin::from("a"), 3), (Origin::from("b"), 1)]
            .into_iter()
            .collect();
        assert_eq!(decode_version(&encode_version(&vv)).unwrap(), vv);
        assert!(matches!(decode_version(&[0xff]), Err(Error::Corrupt(_))));
    }
}

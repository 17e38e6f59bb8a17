//! Deterministic names for the keys of collection partitions: the same
//! operation on the same input gets the same keys (so shared work runs once),
//! a different one never does.

use rudask::core::Key;
use xxhash_rust::xxh3::Xxh3;

/// A token naming one operation: a hash of its kind and its inputs' tokens
/// and parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Token(u128);

impl Token {
    /// The token of `op` applied with `parts` (input tokens, parameters).
    pub(crate) fn of<'a>(op: &str, parts: impl IntoIterator<Item = &'a [u8]>) -> Token {
        let mut h = Xxh3::new();
        h.update(op.as_bytes());
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Token(h.digest128())
    }

    /// A fresh token, for data that enters from the client.
    pub(crate) fn random() -> Token {
        Token(u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..)))
    }

    /// The bytes to feed into a dependent's token.
    pub(crate) fn bytes(&self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The key of partition `i` of the operation named `name`.
    pub(crate) fn key(&self, name: &str, i: usize) -> Key {
        Key::from(format!("{name}-{:032x}-{i}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_token_other_inputs_other_token() {
        let a = Token::of("filter", [b"x".as_slice(), b"lt 0"]);
        assert_eq!(a, Token::of("filter", [b"x".as_slice(), b"lt 0"]));
        assert_ne!(a, Token::of("filter", [b"x".as_slice(), b"lt 1"]));
        assert_ne!(Token::of("ab", [b"c".as_slice()]), Token::of("a", [b"bc".as_slice()]));
        assert_ne!(Token::random(), Token::random());
        assert!(
            a.key("filter", 3).as_str().starts_with("filter-")
                && a.key("f", 3).as_str().ends_with("-3")
        );
    }
}

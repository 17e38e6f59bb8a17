//! `tracing` spans of client requests on the scheduler and of task runs on
//! workers, at debug level. While that level is off a span costs a check of
//! the level and of the call site's cached interest: its fields are not
//! evaluated and nothing is allocated.

use rudask_core::protocol::ClientMsg;
use rudask_core::scheduler::{ClientId, WireId};
use std::fmt::{self, Debug, Write};

/// A span around the handling of one client message, with the client's id
/// and the message's kind (for a request, the request's kind).
pub(crate) fn client_request(c: ClientId, msg: &ClientMsg) -> tracing::span::EnteredSpan {
    tracing::debug_span!(
        "client_request",
        client = c.to_wire(),
        kind = match msg {
            ClientMsg::Request { req, .. } => VariantName::of(req),
            other => VariantName::of(other),
        }
        .as_str()
    )
    .entered()
}

/// A span around one task run, with its key and function.
pub(crate) fn task(key: &rudask_core::Key, function: &'static str) -> tracing::Span {
    tracing::debug_span!("task", key = key.as_str(), function)
}

/// An enum value's variant name, read from its `Debug` output into a
/// buffer on the stack: formatting stops where the variant's fields begin,
/// so no field is formatted and nothing is allocated.
struct VariantName {
    buf: [u8; 48],
    len: usize,
}

impl VariantName {
    fn of(value: &impl Debug) -> VariantName {
        let mut name = VariantName { buf: [0; 48], len: 0 };
        let _ = write!(name, "{value:?}");
        name
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for VariantName {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if !(b.is_ascii_alphanumeric() || b == b'_') || self.len == self.buf.len() {
                return Err(fmt::Error);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::VariantName;

    #[derive(Debug)]
    #[allow(dead_code)]
    enum E {
        Unit,
        Named { payload: Vec<u8> },
        Tuple(String),
    }

    #[test]
    fn variant_names_stop_before_the_fields() {
        assert_eq!(VariantName::of(&E::Unit).as_str(), "Unit");
        assert_eq!(VariantName::of(&E::Named { payload: vec![1; 1000] }).as_str(), "Named");
        assert_eq!(VariantName::of(&E::Tuple("x".into())).as_str(), "Tuple");
    }
}

//! What the gateway and its plugins must agree on, so each lives in one place: the
//! server-sent events both sides read and write ([`sse`]), the error kinds of the two
//! client APIs ([`errors`]), the text of a message's content ([`content`]) and the
//! token estimate used where no tokenizer answers ([`tokens`]).
//!
//! Plain Rust with no I/O: it builds for the host and for wasm32-wasip2 alike.

pub mod content;
pub mod errors;
pub mod sse;
pub mod tokens;

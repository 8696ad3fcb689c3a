//! One server-sent event, as the translators consume and produce them.

/// A server-sent event: an optional `event:` name and its `data:` payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn data(data: impl Into<String>) -> Self {
        Self { event: None, data: data.into() }
    }

    pub fn named(event: impl Into<String>, data: impl Into<String>) -> Self {
        Self { event: Some(event.into()), data: data.into() }
    }

    /// The event in wire format, ending with the blank line that terminates it.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(event) = &self.event {
            out.push_str("event: ");
            out.push_str(event);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_named_and_multiline_events() {
        assert_eq!(SseEvent::named("ping", "{}").encode(), "event: ping\ndata: {}\n\n");
        assert_eq!(SseEvent::data("a\nb").encode(), "data: a\ndata: b\n\n");
    }
}

//! Server-sent events: one event as both sides read and write it, and incremental
//! decoding (bytes arrive in arbitrary chunks, events come out whole).

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

/// The most one event may hold while it is decoded: an upstream that never ends its
/// event cannot make the decoder grow without end.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// Splits a byte stream into SSE events. Handles `\n`, `\r\n` and `\r` line ends,
/// multi-line data, comments, and events split across chunks.
#[derive(Default)]
pub struct SseDecoder {
    /// Bytes of an unfinished line.
    partial: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The last chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// An event outgrew [`MAX_EVENT_BYTES`]; nothing more is decoded.
    overflowed: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) {
        if self.overflowed {
            return;
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let line_end = chunk[end];
            if self.partial.is_empty() {
                self.line(&chunk[..end], out);
            } else {
                self.partial.extend_from_slice(&chunk[..end]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line, out);
            }
            chunk = &chunk[end + 1..];
            if line_end == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() + self.data.as_ref().map_or(0, String::len) > MAX_EVENT_BYTES {
            self.overflowed = true;
            self.partial = Vec::new();
            self.data = None;
        }
    }

    /// True once an event outgrew [`MAX_EVENT_BYTES`]: the stream is broken.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The stream ended: an event without its closing blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // Comments (`: keep-alive`), `id` and `retry` carry nothing we relay.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_event_stops_the_decoder_instead_of_growing_it() {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let piece = vec![b'x'; 1 << 20];
        decoder.push(b"data: ", &mut out);
        for _ in 0..17 {
            decoder.push(&piece, &mut out);
        }
        assert!(decoder.overflowed() && out.is_empty());
        decoder.push(b"\n\ndata: late\n\n", &mut out);
        assert!(out.is_empty(), "nothing after the overflow");
    }

    fn decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut out);
        }
        decoder.finish(&mut out);
        out
    }

    #[test]
    fn encodes_named_and_multiline_events() {
        assert_eq!(SseEvent::named("ping", "{}").encode(), "event: ping\ndata: {}\n\n");
        assert_eq!(SseEvent::data("a\nb").encode(), "data: a\ndata: b\n\n");
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let stream =
            b"event: message_start\ndata: {\"a\":1}\n\n: comment\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n";
        let whole = decode(&[stream]);
        assert_eq!(
            whole,
            vec![
                SseEvent::named("message_start", "{\"a\":1}"),
                SseEvent::data("line1\nline2"),
                SseEvent::data("[DONE]"),
            ]
        );
        for split in 1..stream.len() {
            assert_eq!(decode(&[&stream[..split], &stream[split..]]), whole, "split at {split}");
        }
    }

    #[test]
    fn accepts_crlf_and_cr_and_an_unterminated_last_event() {
        assert_eq!(
            decode(&[b"data: a\r\n\r\ndata: b\r\rdata: c"]),
            vec![SseEvent::data("a"), SseEvent::data("b"), SseEvent::data("c")]
        );
        assert_eq!(decode(&[b"data: a\r", b"\n\r", b"\n"]), vec![SseEvent::data("a")]);
        assert_eq!(decode(&[b"data:no-space\n\n"]), vec![SseEvent::data("no-space")]);
    }
}

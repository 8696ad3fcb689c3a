//! Streaming an upstream's SSE answer to the client as it arrives: passed through
//! chunk by chunk, or translated event by event by the adapter plugin. The stream
//! always ends in a way the client's SDK understands: its API's proper end, or its
//! API's error event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use tracing::{Instrument, info, warn};

use super::record::{CLIENT_CLOSED, Outcome};
use super::upstream::{self, ByteStream, StreamReply};
use crate::core::api::ClientApi;
use crate::core::sse::{SseDecoder, SseEvent};
use crate::plugins::hooks::PluginStream;
use crate::services::analytics::StreamObserver;
use crate::services::memory::answer;

impl Relay {
    /// `api`: what the client speaks; `upstream_api`: what the upstream's events are
    /// in (where usage is read; None: no client's API, so usage is read from the
    /// translated events); `strip_usage_chunk`: drop OpenAI's usage chunk, which the
    /// gateway asked for and the client did not.
    pub fn new(
        api: ClientApi,
        upstream_api: Option<ClientApi>,
        translator: Option<PluginStream>,
        strip_usage_chunk: bool,
        outcome: Outcome,
    ) -> Self {
        let observed_api = upstream_api.unwrap_or(api);
        Self {
            api,
            observed_api,
            observe_translated: upstream_api.is_none(),
            upstream: None,
            decoder: SseDecoder::new(),
            translator,
            strip_usage_chunk,
            observer: Some(StreamObserver::new(observed_api)),
            idle_timeout: Duration::ZERO,
            deadline: None,
            pending: VecDeque::new(),
            events: Vec::new(),
            saw_end: false,
            answer_queued: false,
            answer_delivered: false,
            upstream_done: false,
            finished: false,
            status: 200,
            bytes_out: 0,
            outcome,
            first_byte: None,
            span: tracing::Span::current(),
        }
    }

    /// The client's streamed response, relaying `upstream`'s body.
    /// `idle_timeout`: the longest wait for the next chunk; `total`: for all of it.
    pub fn into_response(mut self, upstream: StreamReply, idle_timeout: Duration, total: Duration) -> Response {
        let mut headers = http::HeaderMap::new();
        upstream::forwarded_headers(&upstream.headers, &mut headers);
        self.status = upstream.status.as_u16();
        self.idle_timeout = idle_timeout;
        self.deadline = Some(tokio::time::Instant::now() + total);
        self.upstream = Some(upstream.body);
        let body = futures_util::stream::unfold(self, |mut relay| {
            let span = relay.span.clone();
            async move {
                let chunk = relay.next_chunk().instrument(span).await?;
                Some((Ok::<_, Infallible>(chunk), relay))
            }
        });
        let mut response = Response::new(Body::from_stream(body));
        let out = response.headers_mut();
        out.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        out.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        out.extend(headers);
        response
    }
}

/// An OpenAI usage chunk: no choices, only usage.
fn is_usage_chunk(event: &SseEvent) -> bool {
    event.data.contains("\"usage\"") && event.data.contains("\"choices\":[]")
}

pub struct Relay {
    api: ClientApi,
    /// The API of the events usage and the answer are read from.
    observed_api: ClientApi,
    /// They are the translated events (the upstream's are no client's API).
    observe_translated: bool,
    upstream: Option<ByteStream>,
    decoder: SseDecoder,
    /// None: passthrough.
    translator: Option<PluginStream>,
    strip_usage_chunk: bool,
    /// Reads usage and the finish reason from the upstream's events.
    observer: Option<StreamObserver>,
    idle_timeout: Duration,
    /// When the whole stream must be over (the deployment's `timeout`).
    deadline: Option<tokio::time::Instant>,
    /// Bytes ready for the client.
    pending: VecDeque<Bytes>,
    /// Decoded upstream events, reused between chunks.
    events: Vec<SseEvent>,
    /// Passthrough: the upstream sent its API's proper end.
    saw_end: bool,
    /// The client's API's successful end (`[DONE]`, `message_stop`,
    /// `response.completed`) is queued for the client...
    answer_queued: bool,
    /// ...and was handed over: the client has the whole answer, and a client that
    /// hangs up now (Codex does, right after `response.completed`) got a success.
    answer_delivered: bool,
    upstream_done: bool,
    finished: bool,
    status: u16,
    bytes_out: u64,
    outcome: Outcome,
    first_byte: Option<Duration>,
    /// The request's span: the relay outlives the handler that created it.
    span: tracing::Span,
}

impl Relay {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                self.first_byte.get_or_insert_with(|| self.outcome.started.elapsed());
                self.bytes_out += chunk.len() as u64;
                self.answer_delivered |= self.answer_queued && self.pending.is_empty();
                return Some(chunk);
            }
            if self.upstream_done {
                self.finished = true;
                self.outcome.attempt_ended();
                let observed = self.observer.take().map(StreamObserver::finish).unwrap_or_default();
                self.outcome.finish(self.status, observed, self.bytes_out, self.first_byte);
                return None;
            }
            let upstream = self.upstream.as_mut()?;
            let deadline = self.deadline.unwrap_or_else(tokio::time::Instant::now);
            let wait = self.idle_timeout.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, upstream.next()).await {
                Ok(Some(Ok(bytes))) => self.take(bytes).await,
                Ok(None) => self.end(None).await,
                Ok(Some(Err(error))) => self.end(Some(format!("the upstream stream broke off: {error}"))).await,
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    let total = self.outcome.started.elapsed().as_secs_f64();
                    self.end(Some(format!("the upstream's stream was not over within the timeout ({total:.0}s)")))
                        .await;
                }
                Err(_) => {
                    self.end(Some(format!("the upstream sent nothing for {}s", self.idle_timeout.as_secs_f64()))).await;
                }
            }
        }
    }

    async fn take(&mut self, bytes: Bytes) {
        self.decoder.push(&bytes, &mut self.events);
        if self.decoder.overflowed() {
            let limit = crate::core::sse::MAX_EVENT_BYTES >> 20;
            self.end(Some(format!("the upstream sent an event larger than {limit} MiB"))).await;
            return;
        }
        if !self.observe_translated {
            observe(&mut self.observer, &mut self.outcome, self.observed_api, &self.events);
        }
        if self.translator.is_some() {
            if let Err(problem) = self.translate_events().await {
                self.end(Some(problem)).await;
            }
            return;
        }
        self.pass_events(Some(bytes));
    }

    /// Passthrough: forwards the chunk as it came, or, when a usage chunk must go,
    /// event by event without it.
    fn pass_events(&mut self, chunk: Option<Bytes>) {
        let api = self.api;
        self.answer_queued |= self.events.iter().any(|e| api.is_answer_end(e));
        if self.strip_usage_chunk {
            for event in self.events.drain(..) {
                self.saw_end |= api.is_stream_end(&event);
                if !is_usage_chunk(&event) {
                    self.pending.push_back(Bytes::from(event.encode()));
                }
            }
        } else {
            self.saw_end |= self.events.drain(..).any(|e| api.is_stream_end(&e));
            self.pending.extend(chunk);
        }
    }

    /// Hands the decoded events to the translator and queues what it returns.
    async fn translate_events(&mut self) -> Result<(), String> {
        let Some(translator) = self.translator.as_mut() else {
            return Ok(());
        };
        for event in self.events.drain(..) {
            let translated = translator.push(event).await.map_err(|e| e.message)?;
            if self.observe_translated {
                observe(&mut self.observer, &mut self.outcome, self.observed_api, &translated);
            }
            self.answer_queued |= translated.iter().any(|e| self.api.is_answer_end(e));
            self.pending.extend(translated.iter().map(|e| Bytes::from(e.encode())));
        }
        Ok(())
    }

    /// The upstream is done, cleanly or not: flush what is left, then make sure the
    /// client sees either its API's end or an error event.
    async fn end(&mut self, mut problem: Option<String>) {
        if self.upstream_done {
            return;
        }
        self.upstream_done = true;
        self.decoder.finish(&mut self.events);
        if !self.observe_translated {
            observe(&mut self.observer, &mut self.outcome, self.observed_api, &self.events);
        }
        let complete = if self.translator.is_some() {
            let flushed = self.translate_events().await;
            match (flushed, self.translator.as_mut()) {
                (Ok(()), Some(translator)) => match translator.finish().await {
                    Ok((events, completed)) => {
                        if self.observe_translated {
                            observe(&mut self.observer, &mut self.outcome, self.observed_api, &events);
                        }
                        self.answer_queued |= events.iter().any(|e| self.api.is_answer_end(e));
                        self.pending.extend(events.iter().map(|e| Bytes::from(e.encode())));
                        completed
                    }
                    Err(error) => {
                        problem.get_or_insert(error.message);
                        false
                    }
                },
                (Err(error), _) => {
                    problem.get_or_insert(error);
                    false
                }
                (Ok(()), None) => false,
            }
        } else {
            // A passed-through chunk is already on its way; only a stripped stream
            // still holds whole events.
            self.pass_events(None);
            self.saw_end
        };
        let problem =
            problem.or_else(|| (!complete).then(|| "the upstream stream ended before it was complete".to_owned()));
        if let Some(problem) = problem {
            warn!(problem = %problem, "stream cut short");
            self.outcome.error = Some("stream_incomplete");
            // A blank line first closes any half-sent event of a passed-through stream.
            self.pending.push_back(Bytes::from(format!("\n{}", self.api.stream_error(&problem).encode())));
        }
    }
}

/// Reads usage, the finish reason and, for a turn to remember, the answer's text
/// from `events` (in `api`).
fn observe(observer: &mut Option<StreamObserver>, outcome: &mut Outcome, api: ClientApi, events: &[SseEvent]) {
    if let Some(observer) = observer.as_mut() {
        events.iter().for_each(|e| observer.observe(e));
    }
    if let Some(turn) = outcome.turn.as_mut().filter(|turn| !turn.is_full()) {
        for text in events.iter().filter_map(|e| answer::of_event(api, e)) {
            turn.add_answer(&text);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if !self.finished && self.answer_delivered {
            // The whole answer reached the client; the upstream's last bytes (or the
            // end of its body) had not, which the client does not need.
            self.finished = true;
            self.outcome.attempt_ended();
            let observed = self.observer.take().map(StreamObserver::finish).unwrap_or_default();
            self.outcome.finish(self.status, observed, self.bytes_out, self.first_byte);
        } else if !self.finished {
            let _request = self.span.enter();
            info!(
                after_ms = self.outcome.started.elapsed().as_secs_f64() * 1e3,
                "client went away mid-stream; upstream request cancelled"
            );
            self.outcome.attempt_ended();
            self.outcome.error = Some("client_disconnected");
            let observed = self.observer.take().map(StreamObserver::finish).unwrap_or_default();
            self.outcome.finish(CLIENT_CLOSED, observed, self.bytes_out, self.first_byte);
        }
    }
}

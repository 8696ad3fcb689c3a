//! The gateway's own requests (the extraction model distilling a turn into facts, an
//! embedding model of `model_list` embedding memories and questions):
//! routed, adapted, sent and recorded like a client's, under the gateway's own client
//! name and the user and project they work for, so what they cost shows in the
//! analytics. They skip authentication, detection and memory: nobody called, and a
//! memory request remembering itself would never end.

use std::sync::Arc;

use anyhow::{Context, bail};
use http::HeaderMap;
use serde_json::{Value, json};

use super::auth::CredentialHeader;
use super::record::Outcome;
use super::request::ClientRequest;
use super::route;
use super::send::{self, Answer};
use super::upstream::ClientHeaders;
use crate::core::api::ClientApi;
use crate::core::identity::{Field, Identity, Source};
use crate::core::ids::new_request_id;
use crate::services::analytics::Observed;
use crate::services::memory::embedding::EmbeddingCalls;
use crate::services::memory::facts::{self, Target};
use crate::services::memory::{Scope, Stored};
use crate::services::{Services, WeakServices};

/// The largest answer read (a few facts, or the embeddings of a batch of memories).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Sends the chat completion `body` for `scope` and returns the answer's JSON; an
/// error when no deployment answered with success.
pub async fn chat(services: &Services, scope: &Scope, body: &Value) -> anyhow::Result<Value> {
    send(services, scope, ClientApi::OpenAiChat, body).await
}

/// The embeddings of `texts` by model group `model`, for `scope`, in their order.
pub async fn embed(services: &Services, scope: &Scope, model: &str, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
    let answer = send(services, scope, ClientApi::OpenAiEmbeddings, &json!({ "model": model, "input": texts })).await?;
    let mut data: Vec<Value> = answer["data"].as_array().cloned().context("the answer has no `data`")?;
    data.sort_by_key(|item| item["index"].as_u64());
    data.iter()
        .map(|item| {
            let numbers = item["embedding"].as_array().context("an embedding is not a list of numbers")?;
            numbers.iter().map(|n| n.as_f64().map(|n| n as f32).context("an embedding holds a non-number")).collect()
        })
        .collect()
}

/// One own request of `api`, sent and recorded; the answer's JSON.
async fn send(services: &Services, scope: &Scope, api: ClientApi, body: &Value) -> anyhow::Result<Value> {
    let snapshot = services.snapshot();
    let mut outcome = Outcome::new(services.clone(), Arc::from(new_request_id()), api);
    outcome.identity = Some(identity(scope));
    let bytes = serde_json::to_vec(body)?;
    outcome.bytes_in = bytes.len() as u64;
    let request = ClientRequest::parse(api, &bytes).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    outcome.model.clone_from(&request.model);
    let sent = async {
        let mut plan = route::plan(&snapshot.router, &request.model, None)?;
        // Vectors of another model would not compare with the ones stored: embeddings
        // never fall back to another group.
        if api == ClientApi::OpenAiEmbeddings {
            plan.groups.truncate(1);
            plan.on_context_overflow.clear();
        }
        let headers = HeaderMap::new();
        let client = ClientHeaders { headers: &headers, credential: CredentialHeader(None), container_tag: None };
        send::send(&snapshot, &plan, &request, &client, &mut outcome).await
    }
    .await;
    let (response, observed, bytes_out) = match sent {
        Ok(Answer::Whole { response, observed, bytes_out }) => (response, observed, bytes_out),
        // Never asked for: the request does not stream.
        Ok(Answer::Streaming(_)) => bail!("the model streamed an answer that was not asked to stream"),
        Err(error) => {
            outcome.error = Some(error.kind.code());
            outcome.finish(error.kind.status(), Observed::default(), 0, None);
            bail!("{}", error.message);
        }
    };
    let status = response.status();
    outcome.finish(status.as_u16(), observed, bytes_out, None);
    let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await.context("reading the answer")?;
    if !status.is_success() {
        bail!("the model answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    }
    serde_json::from_slice(&body).context("the answer is not JSON")
}

/// Who an own request is recorded for: the scope's user and project, and the gateway.
fn identity(scope: &Scope) -> Identity {
    let field = |value: &str| Field { value: value.to_owned(), source: Source::Default };
    Identity {
        user: field(&scope.user),
        project: scope.project.as_deref().map(field),
        client: Some(field(facts::CLIENT)),
        scaffolding: Vec::new(),
    }
}

/// Starts the fact extraction worker on the gateway's services, and gives them the
/// way to call embedding models.
pub fn start(services: &Services) {
    services.connect_embeddings(Arc::new(Embedding(services.downgrade())));
    facts::start(Gateway(services.clone()), services.extraction_notify());
}

/// Embedding calls for the services, which hold this (so it must not hold them).
struct Embedding(WeakServices);

impl EmbeddingCalls for Embedding {
    fn embed<'a>(
        &'a self,
        scope: &'a Scope,
        model: &'a str,
        texts: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<Vec<Vec<f32>>>> {
        Box::pin(async move {
            let services = self.0.upgrade().context("the gateway is shutting down")?;
            embed(&services, scope, model, texts).await
        })
    }
}

/// The gateway as the extraction worker's host.
struct Gateway(Services);

impl facts::Host for Gateway {
    fn extraction_model(&self) -> Option<String> {
        self.0.snapshot().config.memory.as_ref().and_then(|m| m.extraction_model.clone())
    }

    fn target(&self) -> Target<'_> {
        self.0.local_memories().facts_target()
    }

    async fn related(&self, scope: &Scope, text: &str, limit: usize) -> anyhow::Result<Vec<Stored>> {
        self.0.local_memories().search(scope, text, limit).await
    }

    async fn chat(&self, scope: &Scope, body: Value) -> anyhow::Result<Value> {
        chat(&self.0, scope, &body).await
    }

    fn stored_turn(&self) {
        self.0.memories_stored();
    }
}

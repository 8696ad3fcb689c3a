//! Authentication as middleware: every keyed route establishes its [`Caller`] (or
//! answers 401 in the client's shape); admin routes also need the master key.

use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::error_shape_for;
use crate::core::error::{ErrorKind, ErrorShape, GatewayError};
use crate::pipeline::RequestContext;
use crate::pipeline::auth::{self, Caller};
use crate::services::Services;

pub async fn authenticate(
    State(services): State<Services>,
    Extension(ctx): Extension<RequestContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let master_key = ctx.snapshot.config.master_key.as_ref();
    match auth::authenticate(request.headers(), master_key, services.keys()) {
        Ok((caller, header)) => {
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(header);
            next.run(request).await
        }
        Err(error) => error.into_response(error_shape_for(request.uri().path())),
    }
}

/// Admin routes (`/admin/*`, analytics): the master key, or anyone when the gateway
/// does not authenticate (no master key: loopback only by default).
pub async fn admin_only(Extension(caller): Extension<Caller>, request: Request, next: Next) -> Response {
    match caller {
        Caller::Master | Caller::Anonymous => next.run(request).await,
        Caller::Key(_) => GatewayError::new(ErrorKind::PermissionDenied, "this route needs the master key")
            .into_response(ErrorShape::OpenAi),
    }
}

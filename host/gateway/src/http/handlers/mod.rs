//! The small handlers behind the routes that are not model calls.

pub mod admin;
pub mod analytics;
pub mod health;
pub mod keys;
pub mod memories;
pub mod models;
pub mod routing_info;

use axum::response::{IntoResponse, Response};

use crate::core::error::{ErrorShape, GatewayError};

/// A [`GatewayError`] answered in OpenAI's shape, as the admin endpoints (keys,
/// analytics) answer, so their handlers can use `?`.
pub struct AdminError(pub GatewayError);

impl From<GatewayError> for AdminError {
    fn from(error: GatewayError) -> Self {
        Self(error)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        self.0.into_response(ErrorShape::OpenAi)
    }
}

//! `GET /openapi.yaml`: the OpenAPI description of this API (`openapi.yaml`
//! at the repository's root), built into the binary so a node always serves
//! the description of the code it runs. Open like `/healthz`: it holds no
//! data, and a client needs it before it has a token.

use axum::http::header;
use axum::response::IntoResponse;

/// The description, as the repository holds it.
pub const DESCRIPTION: &str = include_str!("../../../openapi.yaml");

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], DESCRIPTION)
}

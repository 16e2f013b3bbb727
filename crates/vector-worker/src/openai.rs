//! `POST /v1/embeddings`, OpenAI-compatible, on the worker's metrics port:
//! the gateway embeds search queries with the same model as the stored
//! vectors by pointing its embeddings base URL here. Requests go through
//! the same model thread (and batches) as the queue path.

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::service::{EmbedService, Lane};

/// Request limits of the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Inputs in one request.
    pub max_inputs: usize,
    /// Bytes of one input.
    pub max_input_bytes: usize,
    /// Bytes of the whole request body.
    pub max_body_bytes: usize,
}

/// The bearer key clients must send (`EMBED_API_KEY`); never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::str::FromStr for ApiKey {
    type Err = String;

    fn from_str(key: &str) -> Result<Self, String> {
        let key = key.trim();
        if key.is_empty() {
            return Err("the API key is empty".into());
        }
        Ok(Self(key.to_owned()))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl ApiKey {
    /// Whether `headers` carry `Authorization: Bearer <this key>`, compared
    /// in time independent of where they differ.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return false;
        };
        bool::from(given.trim().as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[derive(Clone)]
struct ApiState {
    service: EmbedService,
    limits: ApiLimits,
    key: Option<ApiKey>,
}

/// The routes of the embeddings API; with a `key`, requests without it are
/// refused (401).
pub fn routes(service: EmbedService, limits: ApiLimits, key: Option<ApiKey>) -> Router {
    Router::new()
        .route("/v1/embeddings", post(embeddings))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(ApiState {
            service,
            limits,
            key,
        })
}

/// The request body. `model` and `user` are accepted and ignored (clients
/// keep their model name; the answer names the loaded model).
#[derive(Debug, Deserialize)]
struct EmbeddingsRequest {
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: Some(param),
            code: None,
        }
    }

    /// As OpenAI answers a missing or wrong key.
    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect or missing API key: send Authorization: Bearer <EMBED_API_KEY>"
                .into(),
            param: None,
            code: Some("invalid_api_key"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let body = json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, Json(body)).into_response()
    }
}

async fn embeddings(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Result<Json<EmbeddingsRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    if state.key.as_ref().is_some_and(|key| !key.admits(&headers)) {
        return Err(ApiError::unauthorized());
    }
    let Json(request) = request.map_err(|rejection| ApiError {
        status: rejection.status(),
        message: rejection.body_text(),
        param: None,
        code: None,
    })?;
    let inputs = inputs(&request.input, &state.limits)?;
    let embedder = state.service.embedder().clone();
    if let Some(dimensions) = request.dimensions
        && dimensions != embedder.dimension()
    {
        return Err(ApiError::invalid(
            format!(
                "this model produces {} dimensions, not {dimensions}",
                embedder.dimension()
            ),
            "dimensions",
        ));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("encoding_format must be float or base64, got {other:?}"),
                "encoding_format",
            ));
        }
    };
    let limit = embedder.max_tokens();
    let tokens: usize = inputs
        .iter()
        .map(|text| {
            embedder
                .count_tokens(text)
                .map(|n| n.min(limit))
                .unwrap_or(0)
        })
        .sum();
    let vectors = state
        .service
        .embed(Lane::Api, inputs)
        .await
        .map_err(|error| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: error.to_string(),
            param: None,
            code: None,
        })?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": embedder.model_name(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

/// The inputs as strings, within the limits.
fn inputs(input: &Value, limits: &ApiLimits) -> Result<Vec<String>, ApiError> {
    let texts: Vec<String> = match input {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) if items.is_empty() => {
            return Err(ApiError::invalid(
                "input must not be an empty list",
                "input",
            ));
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(ApiError::invalid(
                    "input must be a string or a list of strings (token arrays are not supported)",
                    "input",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::invalid(
                "input must be a string or a list of strings",
                "input",
            ));
        }
    };
    if texts.len() > limits.max_inputs {
        return Err(ApiError::invalid(
            format!(
                "at most {} inputs per request, got {}",
                limits.max_inputs,
                texts.len()
            ),
            "input",
        ));
    }
    if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
        return Err(ApiError::invalid(
            format!("input[{index}] is empty"),
            "input",
        ));
    }
    if let Some(index) = texts.iter().position(|t| t.len() > limits.max_input_bytes) {
        return Err(ApiError::invalid(
            format!(
                "input[{index}] is longer than {} bytes",
                limits.max_input_bytes
            ),
            "input",
        ));
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ApiLimits = ApiLimits {
        max_inputs: 2,
        max_input_bytes: 10,
        max_body_bytes: 1000,
    };

    #[test]
    fn inputs_accept_a_string_or_a_list_within_limits() {
        assert_eq!(
            inputs(&json!("hi"), &LIMITS).ok(),
            Some(vec!["hi".to_owned()])
        );
        assert_eq!(
            inputs(&json!(["a", "b"]), &LIMITS).map(|v| v.len()).ok(),
            Some(2)
        );
        for (bad, reason) in [
            (json!([]), "empty list"),
            (json!(["a", "b", "c"]), "at most 2"),
            (json!([1, 2]), "token arrays"),
            (json!(""), "empty"),
            (json!("far too long text"), "longer than 10"),
            (json!({"x": 1}), "string or a list"),
        ] {
            let error = inputs(&bad, &LIMITS)
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}

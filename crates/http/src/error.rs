//! The API's error responses, as RabbitMQ's management plugin writes them: a JSON object
//! `{"error": ..., "reason": ...}` with its status code.
//!
//! RabbitMQ 3.10 answers a missing tag or vhost permission with 401 and
//! `not_authorised` (only a failed login gets `not_authorized` and the `WWW-Authenticate`
//! challenge with no body); Warren does the same.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use warren_core::BrokerError;

#[derive(Debug)]
pub enum ApiError {
    /// No credentials: 401 with a Basic challenge and no body.
    NoCredentials,
    /// Wrong credentials: 401 with a Basic challenge and `not_authorized`.
    LoginFailed,
    /// Authenticated, but the user lacks a tag or permission: RabbitMQ's 401
    /// `not_authorised` with a reason ("Not administrator user", ...).
    NotAuthorised(&'static str),
    /// The same with a broker's reason ("ACCESS_REFUSED - access to queue ...").
    NotAuthorisedReason(String),
    /// 404 Object Not Found.
    NotFound,
    /// 404 with RabbitMQ's `not_found` and a broker reason ("no queue 'q' in vhost '/'").
    NotFoundReason(String),
    /// 400 `bad_request` with a reason (a string, or RabbitMQ's Erlang-ish term as JSON).
    BadRequest(Value),
    /// 400 with another error name (`page_out_of_range`, ...).
    BadRequestNamed(&'static str, String),
    /// 503 of a failed health check, body given.
    Unavailable(Value),
    /// 500
    Internal(String),
}

impl ApiError {
    /// A 400 with this reason. RabbitMQ's validation errors ("Validation failed...") are
    /// Erlang strings, which its API HTML-escapes (`<<"x">>` is sent as
    /// `&lt;&lt;"x"&gt;&gt;`); other reasons are binaries, sent as they are.
    pub fn bad(reason: impl Into<String>) -> ApiError {
        let reason = reason.into();
        let reason = if reason.starts_with("Validation failed") {
            escape_html_tags(&reason)
        } else {
            reason
        };
        ApiError::BadRequest(Value::String(reason))
    }

    /// RabbitMQ's answer to a broker refusal on an API call: a missing object is a 404,
    /// an access refusal a 401, anything else a 400 with the broker's text.
    pub fn from_broker(e: BrokerError) -> ApiError {
        use warren_amqp_codec::reply;
        match e.code {
            reply::NOT_FOUND => ApiError::NotFoundReason(e.message),
            reply::ACCESS_REFUSED => ApiError::NotAuthorised("Access refused."),
            _ => ApiError::bad(e.message),
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> ApiError {
        ApiError::from_broker(e)
    }
}

/// RabbitMQ's `escape_html_tags`: `&`, `<` and `>` as entities.
fn escape_html_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::NoCredentials => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
                    )],
                )
                    .into_response();
            }
            ApiError::LoginFailed => {
                let mut r = json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({"error": "not_authorized", "reason": "Login failed"}),
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
                );
                return r;
            }
            ApiError::NotAuthorised(reason) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "not_authorised", "reason": reason}),
            ),
            ApiError::NotAuthorisedReason(reason) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "not_authorised", "reason": reason}),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "Object Not Found", "reason": "Not Found"}),
            ),
            ApiError::NotFoundReason(reason) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "reason": reason}),
            ),
            ApiError::BadRequest(reason) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "reason": reason}),
            ),
            ApiError::BadRequestNamed(error, reason) => (
                StatusCode::BAD_REQUEST,
                json!({"error": error, "reason": reason}),
            ),
            ApiError::Unavailable(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
            ApiError::Internal(reason) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal_server_error", "reason": reason}),
            ),
        };
        json_response(status, &body)
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

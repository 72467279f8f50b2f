//! The one application error: each kind maps to an HTTP status. Messages of
//! client errors are meant for the person who sent the request; internal
//! details are logged by the caller and never shown.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed request (unparseable body, bot-filled form).
    BadRequest,
    /// Missing or invalid credentials (answered with `WWW-Authenticate`).
    Unauthorized,
    /// Authenticated but not allowed (a failed CSRF check, a member asking
    /// for an owner's action).
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// The request clashes with existing state (a name already taken).
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// Well-formed but invalid input: a field failed validation.
    Unprocessable,
    /// Too many requests; retry after this many seconds.
    RateLimited {
        retry_after: u32,
    },
    /// A backing service (database, KV, outbound HTTP) failed.
    Unavailable,
    /// A bug or misconfiguration. Never shown in detail.
    Internal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: Cow<'static, str>,
    /// The input field at fault, for forms and JSON clients.
    pub field: Option<&'static str>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind, message: message.into(), field: None }
    }
    pub fn field(kind: ErrorKind, field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind, message: message.into(), field: Some(field) }
    }
    pub fn unavailable(detail: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Unavailable, detail.to_string())
    }
    pub fn internal(detail: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Internal, detail.to_string())
    }

    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self.kind {
            ErrorKind::BadRequest => S::BAD_REQUEST,
            ErrorKind::Unauthorized => S::UNAUTHORIZED,
            ErrorKind::Forbidden => S::FORBIDDEN,
            ErrorKind::NotFound => S::NOT_FOUND,
            ErrorKind::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => S::CONFLICT,
            ErrorKind::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => S::UNPROCESSABLE_ENTITY,
            ErrorKind::RateLimited { .. } => S::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => S::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for JSON clients.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Unprocessable => "invalid",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the detail must stay in the logs (server-side faults).
    pub fn is_server_fault(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable | ErrorKind::Internal)
    }

    /// What the client may see: server faults get a generic sentence.
    pub fn public_message(&self) -> &str {
        match self.kind {
            ErrorKind::Unavailable => "The service is busy right now. Please try again in a minute.",
            ErrorKind::Internal => "Something went wrong on our side. Please try again later.",
            _ => &self.message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for Error {}

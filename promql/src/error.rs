//! Query errors, with the Prometheus HTTP API error type and status for each.

use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse or does not type-check.
    #[error("{message}")]
    Parse { message: String },
    /// The query parsed but failed while running (bad argument, many-to-many
    /// matching, duplicate label sets...).
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("query timed out in query execution")]
    Timeout,
    #[error("query was canceled in query execution")]
    Canceled,
    #[error("{0}")]
    Source(#[from] SourceError),
    /// Refused by a limit before doing the work: `reason` names the limit
    /// (the label of the rejection metrics), `error_type` is the API's.
    #[error("{message}")]
    Rejected {
        reason: &'static str,
        error_type: &'static str,
        message: String,
    },
}

impl From<crate::parse::ParseError> for QueryError {
    fn from(e: crate::parse::ParseError) -> Self {
        match e.reason() {
            Some(reason) => QueryError::Rejected {
                reason,
                error_type: "bad_data",
                message: e.to_string(),
            },
            None => QueryError::Parse {
                message: e.to_string(),
            },
        }
    }
}

impl QueryError {
    /// The `errorType` field of the Prometheus HTTP API.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse { .. } => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples => "execution",
            QueryError::Timeout => "timeout",
            QueryError::Canceled => "canceled",
            QueryError::Source(SourceError::Unavailable(_)) => "unavailable",
            QueryError::Source(SourceError::BadRequest(_)) => "bad_data",
            QueryError::Source(SourceError::Canceled) => "canceled",
            QueryError::Rejected { error_type, .. } => error_type,
        }
    }

    /// The HTTP status the Prometheus API answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::Parse { .. } => 400,
            QueryError::Execution(_) | QueryError::TooManySamples => 422,
            QueryError::Timeout => 503,
            QueryError::Canceled => 499,
            QueryError::Source(SourceError::Unavailable(_)) => 503,
            QueryError::Source(SourceError::BadRequest(_)) => 400,
            QueryError::Source(SourceError::Canceled) => 499,
            QueryError::Rejected { error_type, .. } => match *error_type {
                "bad_data" => 400,
                "execution" => 422,
                "canceled" => 499,
                "unavailable" | "timeout" => 503,
                _ => 500,
            },
        }
    }

    /// For a request refused by a limit: which one (the `reason` label of
    /// `skein_query_rejected_total`).
    pub fn rejection_reason(&self) -> Option<&'static str> {
        match self {
            QueryError::Rejected { reason, .. } => Some(reason),
            QueryError::TooManySamples => Some("too_many_samples"),
            _ => None,
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_statuses_follow_prometheus() {
        let e = QueryError::TooManySamples;
        assert_eq!(e.error_type(), "execution");
        assert_eq!(e.http_status(), 422);
        assert_eq!(
            e.to_string(),
            "query processing would load too many samples into memory in query execution"
        );
        assert_eq!(QueryError::Timeout.http_status(), 503);
        assert_eq!(
            QueryError::Timeout.to_string(),
            "query timed out in query execution"
        );
        let s = QueryError::Source(SourceError::Unavailable("x".into()));
        assert_eq!((s.error_type(), s.http_status()), ("unavailable", 503));
        let b = QueryError::Source(SourceError::BadRequest("x".into()));
        assert_eq!((b.error_type(), b.http_status()), ("bad_data", 400));
    }
}

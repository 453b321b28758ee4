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

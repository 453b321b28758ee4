//! How many API requests evaluate at once: at most `max_concurrent`, with
//! at most `max_queued` more waiting for a slot; past that a request is
//! refused at once (503 `unavailable`). Waiting counts against the
//! request's deadline (503 `timeout` when it runs out in the queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use skein_promql::QueryError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::QueryMetrics;

#[derive(Clone, Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_concurrent: usize,
    max_queued: usize,
    metrics: QueryMetrics,
}

/// A request's slot, held until it is dropped; with its deadline.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    metrics: QueryMetrics,
    deadline: Instant,
}

impl Admitted {
    /// When the request's time (queue wait included) runs out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.metrics.in_flight().dec();
    }
}

/// Decrements the waiting count however the wait ends (the request may be
/// dropped while it waits).
struct Waiting<'a>(&'a Admission);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.queued().dec();
    }
}

impl Admission {
    pub fn new(max_concurrent: usize, max_queued: usize, metrics: QueryMetrics) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Admission {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_concurrent,
            max_queued,
            metrics,
        }
    }

    fn admitted(&self, permit: OwnedSemaphorePermit, deadline: Instant) -> Admitted {
        self.metrics.in_flight().inc();
        Admitted {
            _permit: permit,
            metrics: self.metrics.clone(),
            deadline,
        }
    }

    /// Waits for a slot until `deadline`. Refusals are counted.
    pub async fn admit(&self, deadline: Instant) -> Result<Admitted, QueryError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(self.admitted(p, deadline));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.metrics.rejected("queue_full");
            return Err(QueryError::Rejected {
                reason: "queue_full",
                error_type: "unavailable",
                message: format!(
                    "too many queries in flight and queued ({} running, {} waiting; \
                     --query.max-concurrent, --query.max-queued): try again later",
                    self.max_concurrent, self.max_queued
                ),
            });
        }
        self.metrics.queued().inc();
        let waiting = Waiting(self);
        let res =
            tokio::time::timeout_at(deadline.into(), self.slots.clone().acquire_owned()).await;
        drop(waiting);
        match res {
            Ok(Ok(p)) => Ok(self.admitted(p, deadline)),
            Ok(Err(_)) => Err(QueryError::Rejected {
                reason: "queue_closed",
                error_type: "unavailable",
                message: "the query queue is closed (shutting down)".into(),
            }),
            Err(_) => {
                self.metrics.rejected("queue_timeout");
                Err(QueryError::Rejected {
                    reason: "queue_timeout",
                    error_type: "timeout",
                    message: "query timed out in query queue".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn slots_then_a_bounded_queue_then_503() {
        let m = QueryMetrics::unregistered();
        let a = Admission::new(2, 1, m.clone());
        let far = Instant::now() + Duration::from_secs(60);
        let first = a.admit(far).await.unwrap();
        let _second = a.admit(far).await.unwrap();
        // The third waits in the queue...
        let a2 = a.clone();
        let third = tokio::spawn(async move { a2.admit(far).await.map(|_| ()) });
        while m.queued().get() == 0 {
            tokio::task::yield_now().await;
        }
        // ...and the fourth finds the queue full.
        let e = a.admit(far).await.unwrap_err();
        assert_eq!((e.error_type(), e.http_status()), ("unavailable", 503));
        assert_eq!(e.rejection_reason(), Some("queue_full"));
        assert_eq!(m.rejected_count("queue_full"), 1);
        assert_eq!(m.in_flight().get(), 2);
        // A slot frees: the queued one runs.
        drop(first);
        third.await.unwrap().unwrap();
        assert_eq!(m.queued().get(), 0);
    }

    #[tokio::test]
    async fn waiting_counts_against_the_deadline() {
        let m = QueryMetrics::unregistered();
        let a = Admission::new(1, 10, m.clone());
        let _busy = a
            .admit(Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        let e = a
            .admit(Instant::now() + Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!((e.error_type(), e.http_status()), ("timeout", 503));
        assert_eq!(e.to_string(), "query timed out in query queue");
        assert_eq!(m.rejected_count("queue_timeout"), 1);
        assert_eq!(m.queued().get(), 0);
    }
}

//! Readiness of a node: ready when every role it runs says so.

use std::sync::Arc;

use futures::future::BoxFuture;

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A set of named readiness checks, one per role.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn add<F>(&mut self, role: &'static str, check: F)
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push((role, Arc::new(check)));
    }

    /// `Ok` when all roles are ready, else the reasons of those that are not.
    pub async fn check(&self) -> Result<(), Vec<String>> {
        let results = futures::future::join_all(self.checks.iter().map(|(role, c)| {
            let fut = c();
            async move { fut.await.map_err(|e| format!("{role}: {e}")) }
        }))
        .await;
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn ready_only_when_every_role_is() {
        let mut r = Readiness::default();
        r.add("query", || async { Ok(()) }.boxed());
        assert!(r.check().await.is_ok());
        r.add("sidecar", || {
            async { Err("prometheus unreachable".to_string()) }.boxed()
        });
        let errs = r.check().await.unwrap_err();
        assert_eq!(errs, vec!["sidecar: prometheus unreachable".to_string()]);
    }
}

//! Where the shipper gets the external labels it writes into meta.json.

use crate::sidecar::{GetState, SidecarActor};
use actix::Addr;
use std::collections::BTreeMap;
use tokio::sync::watch;

/// External labels as a sorted name → value map.
pub type ExternalLabels = BTreeMap<String, String>;

/// The source of the external labels. `None` from [`ExternalLabelsSource::current`] means
/// "not known yet": the shipper then waits and ships nothing.
#[derive(Clone, Debug)]
pub enum ExternalLabelsSource {
    /// Fixed labels.
    Static(ExternalLabels),
    /// The latest value of a watch channel.
    Watch(watch::Receiver<Option<ExternalLabels>>),
    /// The sidecar's state: its labels once it is ready.
    Sidecar(Addr<SidecarActor>),
}

impl ExternalLabelsSource {
    /// Labels given as pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::Static(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The labels now, or `None` while unknown.
    pub async fn current(&self) -> Option<ExternalLabels> {
        match self {
            Self::Static(l) => Some(l.clone()),
            Self::Watch(rx) => rx.borrow().clone(),
            Self::Sidecar(addr) => {
                let state = addr.send(GetState).await.ok()?;
                state.ready.then(|| {
                    state
                        .external_labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect()
                })
            }
        }
    }
}

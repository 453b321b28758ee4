//! `/api/v1/stores` (Thanos): every configured store by component type.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use actix_web::{HttpResponse, web};
use skein_actors::query::{QueryHandle, StoreStatus};

use super::format;
use super::params::ApiError;

/// Go's zero `time.Time`, which Thanos prints for a store never checked.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339(t: Option<SystemTime>) -> String {
    t.map(|t| {
        chrono::DateTime::<chrono::Utc>::from(t)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    })
    .unwrap_or_else(|| ZERO_TIME.to_string())
}

fn store_json(s: &StoreStatus) -> String {
    let label_sets: Vec<String> = s.label_sets.iter().map(format::labels_json).collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"name\":{},\"lastCheck\":{},\"lastError\":{},\"labelSets\":[{}],\"minTime\":{},\"maxTime\":{}}}",
        format::json_str(&s.name),
        format::json_str(&rfc3339(s.last_check)),
        s.last_error
            .as_deref()
            .map(format::json_str)
            .unwrap_or_else(|| "null".to_string()),
        label_sets.join(","),
        s.min_time,
        s.max_time
    );
    out
}

/// The `data` of `/api/v1/stores`.
pub fn stores_json(stores: &[StoreStatus]) -> String {
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in stores {
        let kind = if s.component_type.is_empty() {
            "unknown"
        } else {
            s.component_type.as_str()
        };
        groups.entry(kind).or_default().push(store_json(s));
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(k, v)| format!("{}:[{}]", format::json_str(k), v.join(",")))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// `GET /api/v1/stores`.
pub async fn stores(handle: web::Data<QueryHandle>) -> HttpResponse {
    match handle.stores().await {
        Ok(s) => format::success(&stores_json(&s), &[]),
        Err(e) => ApiError::unavailable(e.to_string()).response(),
    }
}

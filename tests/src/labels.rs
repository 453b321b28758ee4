//! Label sets as ordered maps (so they can key sets of series).

use std::collections::BTreeMap;

/// One series' labels, `__name__` included when present.
pub type LabelSet = BTreeMap<String, String>;

/// Build a label set from pairs.
pub fn label_set(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// `{a="b", c="d"}` rendering for messages.
pub fn render(ls: &LabelSet) -> String {
    let inner: Vec<String> = ls.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// The PromQL selector `name{a="b",...}` matching exactly this label set's
/// labels (values escaped as PromQL string literals).
pub fn selector(ls: &LabelSet) -> String {
    let name = ls.get("__name__").cloned().unwrap_or_default();
    let m: Vec<String> = ls
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", m.join(","))
}

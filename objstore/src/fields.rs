//! Reads provider keys out of an objstore `config:` map one by one, so every error names the
//! key, and keys nobody read are reported as unknown (Thanos parses these files strictly).

use crate::error::ConfigError;
use serde_json::{Map, Value};
use std::time::Duration;

pub(crate) struct Fields {
    kind: &'static str,
    prefix: String,
    map: Map<String, Value>,
}

impl Fields {
    /// `value` is the provider map; a missing or null `config:` counts as empty.
    pub(crate) fn new(kind: &'static str, value: Option<Value>) -> Result<Self, ConfigError> {
        Self::nested(kind, String::new(), value, "config")
    }

    fn nested(
        kind: &'static str,
        prefix: String,
        value: Option<Value>,
        key: &str,
    ) -> Result<Self, ConfigError> {
        let map = match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(ConfigError::InvalidValue {
                    kind,
                    key: format!("{prefix}{key}"),
                    reason: format!("expected a mapping, got {}", type_name(&other)),
                });
            }
        };
        Ok(Self { kind, prefix, map })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            kind: self.kind,
            key: self.full(key),
            reason: reason.into(),
        }
    }

    /// A string that must be present and non-empty.
    pub(crate) fn req_str(&mut self, key: &str) -> Result<String, ConfigError> {
        match self.opt_str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ConfigError::MissingKey {
                kind: self.kind,
                key: self.full(key),
            }),
        }
    }

    /// A string; numbers are accepted and written out. Empty strings count as absent.
    pub(crate) fn opt_str(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => {
                Err(self.invalid(key, format!("expected a string, got {}", type_name(&other))))
            }
        }
    }

    pub(crate) fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => Err(self.invalid(
                key,
                format!("expected true or false, got {}", type_name(&other)),
            )),
        }
    }

    pub(crate) fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                self.invalid(key, format!("expected a non-negative integer, got {n}"))
            }),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
                self.invalid(key, format!("expected a non-negative integer, got {s:?}"))
            }),
            Some(other) => Err(self.invalid(
                key,
                format!("expected an integer, got {}", type_name(&other)),
            )),
        }
    }

    /// A Go-style duration (`90s`, `1m30s`, `500ms`).
    pub(crate) fn opt_duration(&mut self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) if s == "0" => Ok(Some(Duration::ZERO)),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| self.invalid(key, format!("bad duration {s:?}: {e}"))),
        }
    }

    /// A nested mapping, read with the same rules.
    pub(crate) fn opt_map(&mut self, key: &str) -> Result<Option<Fields>, ConfigError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            v => Self::nested(self.kind, format!("{}{key}.", self.prefix), v, key).map(Some),
        }
    }

    /// Ends reading: keys in `ignored` (Thanos options Skein accepts but does not act on) are
    /// logged; any other leftover key is an error.
    pub(crate) fn finish(self, ignored: &[&str]) -> Result<(), ConfigError> {
        let mut keys: Vec<&String> = self.map.keys().collect();
        keys.sort();
        for key in keys {
            if ignored.contains(&key.as_str()) {
                tracing::warn!(
                    kind = self.kind,
                    key = %format!("{}{key}", self.prefix),
                    "objstore config option is accepted for compatibility but has no effect"
                );
            } else {
                return Err(ConfigError::UnknownKey {
                    kind: self.kind,
                    key: format!("{}{key}", self.prefix),
                });
            }
        }
        Ok(())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

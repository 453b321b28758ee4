//! Label matchers used to select series from an index.

use regex::Regex;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// A label matcher. A series without the label is treated as having the empty value, as in
/// Prometheus. Regexes are fully anchored.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// Compiles the regex itself, without a size limit: for tests and
    /// tools. Servers use [`Matcher::with_regex`].
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?s:{value})$"))?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// A matcher whose regex (anchored, for the regex ops) was compiled by
    /// the caller: servers compile regexes from requests under their size
    /// limits (`skein_promql::re`) and build matchers with this.
    pub fn with_regex(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
        re: Option<Regex>,
    ) -> Self {
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => re,
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Self {
            name: name.into(),
            op,
            value: value.into(),
            re,
        }
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            // Regex ops are only built with a compiled regex.
            (MatchOp::RegexMatch | MatchOp::RegexNoMatch, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_regex_and_empty() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "fo+").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(!m.matches(""));
        let m = Matcher::new(MatchOp::RegexNoMatch, "a", "a|b").unwrap();
        assert!(m.matches(""));
        assert!(!m.matches("b"));
        assert!(Matcher::new(MatchOp::RegexMatch, "a", "(").is_err());
        assert!(Matcher::equal("a", "").matches(""));
    }
}

//! Label pairs as stored in blocks.

use std::fmt;

/// One label pair. Ordering is by name, then value (byte-wise), which makes `Vec<Label>` order
/// the same as Prometheus' label-set order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Formats a label set the way Prometheus prints it: `{a="1", b="2"}`.
pub struct DisplayLabels<'a>(pub &'a [Label]);

impl fmt::Display for DisplayLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

//! The query actor: store set, fan-out, merge.

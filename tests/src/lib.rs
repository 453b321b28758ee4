//! Helpers for end-to-end tests: real Prometheus servers on generated data, real
//! `skein` nodes, and comparison of their HTTP API answers.
//!
//! Every wait has a deadline, every child process is killed when its guard drops,
//! and every test gets its own temp dir and ports so tests can run in parallel.

pub mod benchdata;
pub mod blocks;
pub mod bucket;
pub mod case_list;
pub mod cases;
pub mod certs;
pub mod compare;
pub mod datagen;
pub mod differential;
pub mod fixture;
pub mod garage;
pub mod http;
pub mod labels;
pub mod live;
pub mod ports;
pub mod process;
pub mod procinfo;
pub mod prometheus;
pub mod promjson;
pub mod promtool;
pub mod scrape;
pub mod skein;
pub mod storage;
pub mod store_watch;
pub mod timefmt;
pub mod wait;
pub mod wan;
pub mod xorshift;

//! Prometheus 3 semantics checked on hand-computed cases, written in the
//! promqltest language and run by the same runner as the conformance suite
//! (so they run even where shared/promql-testdata is absent).

use skein_promql::promqltest::{Outcome, Runner, parse_script};

const SCRIPT: &str = r#"
load 1m
  counter{job="a"} 0+60x10
  counter{job="b"} 0 60 120 0 60 120
  gauge{job="a", env="p"} 1 2 3 stale 5
  gauge{job="b", env="q"} 10 _ _ _ _ _ _ 20

# 5 samples in (5m, 10m]; extrapolated to the window start: 300 / 300s.
eval instant at 10m rate(counter{job="a"}[5m])
  {job="a"} 1

eval instant at 10m increase(counter{job="a"}[5m])
  {job="a"} 300

# Range windows are left-open.
eval instant at 10m count_over_time(counter{job="a"}[5m])
  {job="a"} 5

# The lookback window is left-open too.
eval instant at 5m gauge{job="b"}

eval instant at 299s gauge{job="b"}
  gauge{job="b", env="q"} 10

# A stale marker ends the series until the next sample.
eval instant at 3m30s gauge{job="a"}

eval instant at 4m gauge{job="a"}
  gauge{job="a", env="p"} 5

eval instant at 4m gauge{job="a"} offset 2m
  gauge{job="a", env="p"} 3

# irate after a counter reset is the new value over the interval.
eval instant at 3m irate(counter{job="b"}[5m])
  {job="b"} 0

eval instant at 2m irate(counter{job="b"}[5m])
  {job="b"} 1

# delta of a gauge: 10 over 420s, extrapolated by 120s and 60s.
eval instant at 8m delta(gauge{job="b"}[10m])
  {env="q", job="b"} 14.285714285714286

# Regexes are fully anchored.
eval instant at 1m count(counter{job=~"a|"})
  {} 1

eval instant at 1m count({__name__=~"coun.*"})
  {} 2

eval instant at 1m count({__name__=~"oun"})

eval instant at 1m count(counter{job!~"a"})
  {} 1

eval instant at 2m sum without (job) (counter)
  {} 240

eval instant at 2m max by (job) (counter)
  {job="a"} 120
  {job="b"} 120

eval instant at 2m avg(gauge)
  {} 6.5

eval instant at 2m counter{job="a"} / on(job) gauge
  {job="a"} 40

# gauge{job="b"} still has its sample from 0 within the lookback.
eval instant at 2m counter / ignoring(env) gauge
  {job="a"} 40
  {job="b"} 12

eval instant at 2m counter > bool 100
  {job="a"} 1
  {job="b"} 1

eval instant at 1m counter > 100

eval instant at 1m counter == 60
  counter{job="a"} 60
  counter{job="b"} 60

eval instant at 1m 2 * counter{job="a"}
  {job="a"} 120

eval instant at 1m -counter{job="a"}
  {job="a"} -60

eval instant at 0 (1 + 2) * -3
  -9

eval instant at 0 1 < bool 2
  1

eval range from 0 to 9m step 3m counter{job="b"}
  counter{job="b"} 0 0 120 120

eval instant at 2m counter + on(job) group_left(env) gauge
  {job="a", env="p"} 123
  {job="b", env="q"} 130

# Label sets differ in env: nothing matches.
eval instant at 2m counter + gauge

eval instant at 2m counter + on() gauge
  expect fail
"#;

#[tokio::test]
async fn prometheus3_semantics() {
    let cmds = parse_script(SCRIPT).unwrap();
    let results = Runner::new().run(&cmds).await;
    let mut failed = Vec::new();
    for r in &results {
        match &r.outcome {
            Outcome::Pass => {}
            other => failed.push(format!("line {} {}: {other:?}", r.line, r.query)),
        }
    }
    assert!(results.len() >= 30, "only {} cases ran", results.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

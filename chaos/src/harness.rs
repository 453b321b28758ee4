//! One run end to end: topology, data, processes, workload, schedule,
//! heal, verdicts, report. Everything is torn down on return, on error,
//! on panic (Drop guards) and on Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::datagen::DataSpec;
use crate::invariants::{self, Facts, WindowRun};
use crate::nemesis::Nemesis;
use crate::oracle::Oracle;
use crate::probes::{baseline, converge, departure, settle_bucket, upload_state};
use crate::procs::{Procs, wait_ready};
use crate::prometheus;
use crate::report::{self, Report, Stats};
use crate::schedule::{self, Pace, Targets};
use crate::topology::bridge::Topology;
use crate::workload::{self, Inject, Record, Target};

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub duration: Duration,
    pub out_dir: PathBuf,
    pub skein: PathBuf,
    pub clusters: usize,
    pub instances: usize,
    pub hours: i64,
    pub qps: f64,
    pub pace: Pace,
    /// Namespace name tag (unique per concurrent run in one process).
    pub tag: String,
    pub inject: Inject,
    /// Seconds after a heal before answers must be exact again.
    pub grace_s: f64,
    /// Bound on store-set convergence after a heal.
    pub converge_bound_s: f64,
    /// A fixed list of faults instead of the seeded schedule (self-tests).
    pub script: Option<Vec<schedule::Window>>,
    /// Queriers find their own cluster's sidecars by LAN gossip (other
    /// clusters stay static).
    pub gossip: bool,
}

impl RunConfig {
    pub fn new(seed: u64, duration: Duration, out_dir: PathBuf, skein: PathBuf) -> RunConfig {
        RunConfig {
            seed,
            duration,
            out_dir,
            skein,
            clusters: 2,
            instances: 6,
            hours: 3,
            qps: 5.0,
            pace: Pace::default(),
            tag: String::new(),
            inject: Inject::None,
            grace_s: 15.0,
            converge_bound_s: 20.0,
            script: None,
            gossip: false,
        }
    }
}

/// Runs the whole episode on a thread inside the router namespace.
pub fn run(cfg: RunConfig) -> anyhow::Result<Report> {
    if !cfg.skein.is_file() {
        bail!(
            "skein binary {} not found (cargo build -p skein-node)",
            cfg.skein.display()
        );
    }
    for tool in ["ip", "nft", "prometheus", "promtool"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            bail!("`{tool}` not found on PATH (apt-get install nftables / prometheus)");
        }
    }
    std::fs::create_dir_all(cfg.out_dir.join("logs"))?;
    std::fs::create_dir_all(cfg.out_dir.join("data"))?;
    // Run a private copy: a rebuild of target/debug/skein during the run
    // cannot change the build under test, and name-based kills of "skein"
    // elsewhere on the machine do not reach our nodes.
    std::fs::create_dir_all(cfg.out_dir.join("bin"))?;
    let private = cfg.out_dir.join("bin").join("chaosnode");
    std::fs::copy(&cfg.skein, &private)
        .with_context(|| format!("copy {} to {}", cfg.skein.display(), private.display()))?;
    let mut cfg = cfg;
    cfg.skein = std::fs::canonicalize(&private)?;
    let handle = std::thread::Builder::new()
        .name("skein-chaos".into())
        .spawn(move || -> anyhow::Result<Report> {
            let mut topo = Topology::new(&cfg.tag).context("router namespace")?;
            let storage = storage_support(&cfg.skein);
            let layout = Layout::build(&mut topo, cfg.clusters, storage.is_ok())
                .context("host namespaces")?;
            topo.router.enter_current_thread()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()?;
            let res = rt.block_on(episode(&cfg, &topo, &layout, storage));
            drop(rt);
            topo.teardown();
            res
        })?;
    match handle.join() {
        Ok(r) => r,
        Err(_) => bail!("the run panicked; namespaces and processes were torn down"),
    }
}

/// Host names, addresses and process names of the run.
pub struct Layout {
    /// (cluster, replica) -> (host, addr)
    pub pods: BTreeMap<(usize, usize), (String, String)>,
    /// cluster -> (host, addr)
    pub queriers: BTreeMap<usize, (String, String)>,
    pub hosts: BTreeMap<String, crate::topology::netns::Netns>,
    /// (host, addr) of the S3 server
    pub s3: Option<(String, String)>,
}

impl Layout {
    fn build(topo: &mut Topology, clusters: usize, s3: bool) -> anyhow::Result<Layout> {
        let mut l = Layout {
            pods: BTreeMap::new(),
            queriers: BTreeMap::new(),
            hosts: BTreeMap::new(),
            s3: None,
        };
        if s3 {
            let h = topo.add_host("s3", 200, 10)?;
            l.hosts.insert("s3".into(), h.ns.clone());
            l.s3 = Some(("s3".into(), h.addr));
        }
        for c in 0..clusters {
            let subnet = u8::try_from(c + 1)?;
            for r in 0..2usize {
                let name = format!("c{}n{r}", c + 1);
                let h = topo.add_host(&name, subnet, 10 + r as u8)?;
                l.hosts.insert(name.clone(), h.ns.clone());
                l.pods.insert((c, r), (name, h.addr));
            }
            let name = format!("c{}q", c + 1);
            let h = topo.add_host(&name, subnet, 20)?;
            l.hosts.insert(name.clone(), h.ns.clone());
            l.queriers.insert(c, (name, h.addr));
        }
        Ok(l)
    }

    fn prom(c: usize, r: usize) -> String {
        format!("c{}p{r}", c + 1)
    }

    fn sidecar(c: usize, r: usize) -> String {
        format!("c{}s{r}", c + 1)
    }

    fn querier(c: usize) -> String {
        format!("c{}q", c + 1)
    }
}

/// Ok(garage binary) when this skein build ships blocks and garage is
/// installed; else why storage checks are skipped.
fn storage_support(skein: &std::path::Path) -> Result<PathBuf, String> {
    let help = std::process::Command::new(skein)
        .args(["node", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !help.contains("--sidecar.objstore-config-file") || !help.contains("--sidecar.tsdb-path") {
        return Err("skipped: this skein build has no shipper flags (--sidecar.tsdb-path, --sidecar.objstore-config-file)".into());
    }
    crate::garage::find_binary().ok_or_else(|| {
        "skipped: garage not found (set SKEIN_GARAGE_BIN or cargo install garage)".into()
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock(p: &Arc<Mutex<Procs>>) -> anyhow::Result<std::sync::MutexGuard<'_, Procs>> {
    p.lock()
        .map_err(|_| anyhow::anyhow!("process registry poisoned"))
}

async fn episode(
    cfg: &RunConfig,
    topo: &Topology,
    layout: &Layout,
    storage: Result<PathBuf, String>,
) -> anyhow::Result<Report> {
    let abort = Arc::new(AtomicBool::new(false));
    {
        let abort = abort.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::warn!("interrupted: stopping the run and tearing down");
            abort.store(true, Ordering::SeqCst);
        });
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .build()?;
    let spec = DataSpec::ending_before(cfg.seed, cfg.clusters, cfg.instances, cfg.hours, now_ms());
    let oracle = Arc::new(Oracle::new(spec.clone()));
    let procs = Arc::new(Mutex::new(Procs::new(
        cfg.out_dir.join("logs"),
        Instant::now(),
    )));
    let mut notes = Vec::new();

    // Data and Prometheus pairs.
    for c in 0..cfg.clusters {
        for r in 0..2 {
            let dir = cfg.out_dir.join("data").join(format!("c{}r{r}", c + 1));
            let s = spec.clone();
            let d = dir.clone();
            tokio::task::spawn_blocking(move || s.write_blocks(c, &d.join("tsdb")))
                .await?
                .map_err(anyhow::Error::msg)?;
            let conf = prometheus::write_config(&dir, &DataSpec::cluster_name(c), &r.to_string())?;
            let (host, _) = layout.pods.get(&(c, r)).context("pod")?;
            let ns = layout.hosts.get(host).context("host")?;
            lock(&procs)?.add(prometheus::spec(
                &Layout::prom(c, r),
                ns,
                &conf,
                &dir.join("tsdb"),
                "127.0.0.1:9090",
            ))?;
        }
    }
    let mut cert_nodes: Vec<(String, String)> = layout
        .pods
        .iter()
        .map(|((c, r), (_, addr))| {
            // NAME@CLUSTER: the certificate names the node's identity, which
            // gossip-discovered stores must present.
            (
                format!("{}@c{}", Layout::sidecar(*c, *r), c + 1),
                addr.clone(),
            )
        })
        .collect();
    cert_nodes.extend(
        layout
            .queriers
            .iter()
            .map(|(c, (_, addr))| (format!("{}@c{}", Layout::querier(*c), c + 1), addr.clone())),
    );
    let (sec, sec_note) = {
        let (skein, dir) = (cfg.skein.clone(), cfg.out_dir.join("tls"));
        tokio::task::spawn_blocking(move || prometheus::Security::issue(&skein, &dir, &cert_nodes))
            .await?
    };
    notes.push(sec_note);
    // The S3 server, when the build ships blocks.
    let mut s3 = None;
    if let (Ok(bin), Some((host, addr))) = (&storage, &layout.s3) {
        let ns = layout.hosts.get(host).context("s3 host")?.clone();
        let dir = cfg.out_dir.join("garage");
        let config = crate::garage::write_config(&dir, addr, cfg.seed)?;
        lock(&procs)?.add(crate::garage::spec("s3", &ns, bin, &config))?;
        let (bin, addr) = (bin.clone(), addr.clone());
        let conf = config.clone();
        let got =
            tokio::task::spawn_blocking(move || crate::garage::setup(&ns, &bin, &conf, &addr))
                .await?
                .map_err(anyhow::Error::msg)?;
        std::fs::write(
            cfg.out_dir.join("objstore.yml"),
            crate::garage::objstore_yaml(&got),
        )?;
        notes.push(format!(
            "S3: garage at {} bucket {}",
            got.endpoint, got.bucket
        ));
        s3 = Some(got);
    }
    // Prometheus listens on the pod's loopback; check it from inside the pod
    // through the sidecar's readiness instead (the sidecar reads it).
    let mut stores = Vec::new();
    let mut stores_of: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut uploads = BTreeMap::new();
    let gossip = if cfg.gossip {
        let help = std::process::Command::new(&cfg.skein)
            .args(["node", "--help"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !help.contains("--gossip.listen-address") {
            bail!("this skein build has no gossip flags");
        }
        let key = cfg.out_dir.join("gossip.keyring");
        let mut hexkey = String::new();
        for i in 0..4u64 {
            hexkey.push_str(&format!(
                "{:016x}",
                crate::datagen::mix(cfg.seed ^ (i + 77))
            ));
        }
        std::fs::write(&key, format!("{hexkey}\n"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        }
        notes.push("discovery: LAN gossip inside each cluster (sealed keyring), static stores across clusters".into());
        Some(key)
    } else {
        None
    };
    // Gossip seeds of a cluster: its first pod and its querier.
    let seeds_of = |c: usize| -> Vec<String> {
        let mut v = Vec::new();
        if let Some((_, a)) = layout.pods.get(&(c, 0)) {
            v.push(format!("{a}:7946"));
        }
        if let Some((_, a)) = layout.queriers.get(&c) {
            v.push(format!("{a}:7946"));
        }
        v
    };
    let gossip_args = |c: usize, name: &str, addr: &str| -> Vec<String> {
        let Some(key) = &gossip else { return vec![] };
        let mut a = vec![
            format!("--cluster=c{}", c + 1),
            format!("--node-id={name}"),
            format!("--gossip.listen-address={addr}:7946"),
            format!("--gossip.keyring-file={}", key.display()),
        ];
        a.extend(
            seeds_of(c)
                .into_iter()
                .filter(|s| !s.starts_with(&format!("{addr}:")))
                .map(|s| format!("--gossip.seed={s}")),
        );
        a
    };
    for ((c, r), (host, addr)) in &layout.pods {
        let ns = layout.hosts.get(host).context("host")?;
        let mut spec = prometheus::sidecar_spec(
            &Layout::sidecar(*c, *r),
            ns,
            &cfg.skein,
            &sec,
            addr,
            "http://127.0.0.1:9090",
        );
        if s3.is_some() {
            let tsdb = cfg
                .out_dir
                .join("data")
                .join(format!("c{}r{r}", c + 1))
                .join("tsdb");
            spec.args.extend([
                format!("--sidecar.tsdb-path={}", tsdb.display()),
                format!(
                    "--sidecar.objstore-config-file={}",
                    cfg.out_dir.join("objstore.yml").display()
                ),
                "--sidecar.ship-interval=2s".into(),
            ]);
            uploads.insert(Layout::sidecar(*c, *r), (*c, tsdb));
        }
        spec.args
            .extend(gossip_args(*c, &Layout::sidecar(*c, *r), addr));
        lock(&procs)?.add(spec)?;
        stores.push(format!("{addr}:10901"));
        stores_of
            .entry(*c)
            .or_default()
            .push(format!("{addr}:10901"));
    }
    let replica_label = if cfg.inject == Inject::NoDedup {
        "chaos_no_such_label"
    } else {
        "replica"
    };
    let mut targets = Vec::new();
    for (c, (host, addr)) in &layout.queriers {
        let ns = layout.hosts.get(host).context("host")?;
        let statics: Vec<String> = if gossip.is_some() {
            stores_of
                .iter()
                .filter(|(k, _)| *k != c)
                .flat_map(|(_, v)| v.clone())
                .collect()
        } else {
            stores.clone()
        };
        let mut spec = prometheus::querier_spec(
            &Layout::querier(*c),
            ns,
            &cfg.skein,
            &sec,
            addr,
            &statics,
            replica_label,
        );
        spec.args
            .extend(gossip_args(*c, &Layout::querier(*c), addr));
        lock(&procs)?.add(spec)?;
        targets.push(Target {
            name: Layout::querier(*c),
            base_url: format!("http://{addr}:10902"),
        });
    }
    let setup_start = Instant::now();
    let names = lock(&procs)?.names();
    tracing::info!(processes = names.len(), "started; waiting for readiness");
    for name in names {
        let Some(url) = lock(&procs)?.ready_url(&name) else {
            continue;
        };
        if url.contains("127.0.0.1") {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if abort.load(Ordering::SeqCst) {
                bail!("interrupted during start-up");
            }
            let exited = lock(&procs)?.check();
            if let Some(dead) = exited.first() {
                let logs = crate::procs::tail(&lock(&procs)?.log_path(dead));
                bail!("{dead} exited during start-up:\n{logs}");
            }
            match wait_ready(&client, &url, Duration::from_secs(2)).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    let logs = crate::procs::tail(&lock(&procs)?.log_path(&name));
                    bail!("{name}: {e}\n{logs}");
                }
                Err(_) => {}
            }
        }
    }
    tracing::info!(
        after_s = setup_start.elapsed().as_secs_f64(),
        "all ready; checking a baseline answer"
    );
    let baseline = baseline(&client, &oracle, &targets, cfg.inject, &abort).await;
    let baseline = baseline.map(|_| setup_start.elapsed().as_secs_f64());

    // The episode proper.
    let t0 = Instant::now();
    lock(&procs)?.set_epoch(t0);
    let mut process_names = lock(&procs)?.names();
    process_names.sort();
    let targets_spec = Targets {
        clusters: cfg.clusters,
        processes: process_names,
        sidecars: uploads.keys().cloned().collect(),
        hosts: layout.hosts.keys().cloned().collect(),
        s3: s3.is_some(),
        shipper: s3.is_some(),
    };
    let mut sched = schedule::generate(
        cfg.seed,
        cfg.duration.as_secs_f64(),
        &targets_spec,
        cfg.pace,
    );
    if let Some(script) = &cfg.script {
        sched.windows = script.clone();
    }
    let nemesis = Arc::new(Nemesis {
        procs: procs.clone(),
        router: topo.router.clone(),
        hosts: layout.hosts.clone(),
        queriers: layout
            .queriers
            .keys()
            .map(|c| Layout::querier(*c))
            .collect(),
        s3: layout
            .s3
            .as_ref()
            .filter(|_| s3.is_some())
            .map(|(h, _)| (h.clone(), crate::garage::S3_PORT)),
        uploads: uploads.clone(),
        data: spec.clone(),
        added: std::sync::atomic::AtomicI64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let records: Arc<Mutex<Vec<Record>>> = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(workload::run(workload::Load {
        client: client.clone(),
        oracle: oracle.clone(),
        targets: targets.clone(),
        seed: cfg.seed,
        qps: cfg.qps,
        inject: cfg.inject,
        t0,
        stop: stop.clone(),
        records: records.clone(),
    }));
    let monitor = tokio::spawn(monitor(procs.clone(), stop.clone()));

    tracing::info!(faults = sched.windows.len(), "load started");
    let mut runs: Vec<WindowRun> = vec![WindowRun::default(); sched.windows.len()];
    let mut convergences = Vec::new();
    // Begin and end events in time order; windows may overlap.
    let mut events: Vec<(f64, bool, usize)> = sched
        .windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| [(w.start_s, true, i), (w.end_s, false, i)])
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut active = std::collections::BTreeSet::new();
    let mut departures = Vec::new();
    for (at, begin, i) in events {
        let reached = sleep_until(t0, at, &abort).await;
        if begin && !reached {
            break;
        }
        let (Some(w), Some(run)) = (sched.windows.get(i), runs.get_mut(i)) else {
            continue;
        };
        let (n, f) = (nemesis.clone(), w.fault.clone());
        if begin {
            run.began_s = Some(t0.elapsed().as_secs_f64());
            active.insert(i);
            if let Err(e) = tokio::task::spawn_blocking(move || n.begin(&f)).await? {
                run.begin_error = Some(e);
            }
            if let (crate::schedule::Fault::SidecarKillDuringUpload { proc }, Some(s3)) =
                (&w.fault, &s3)
                && let Some((_, dir)) = uploads.get(proc)
            {
                run.note = Some(upload_state(&client, s3, dir).await);
            }
            if gossip.is_some()
                && let Some((c, store)) = departing_store(layout, &w.fault)
                && let Some(t) = targets.get(c)
            {
                run.departure_watched = true;
                departures.push((
                    i,
                    tokio::spawn(departure(
                        client.clone(),
                        t.base_url.clone(),
                        store,
                        Duration::from_secs_f64((w.end_s - w.start_s).max(1.0)),
                    )),
                ));
            }
            tracing::info!(window = w.id, fault = %w.fault.label(), "fault begins");
            continue;
        }
        if let Err(e) = tokio::task::spawn_blocking(move || n.end(&f)).await? {
            run.heal_error = Some(e);
        }
        run.healed_s = Some(t0.elapsed().as_secs_f64());
        active.remove(&i);
        tracing::info!(window = w.id, "fault healed");
        if active.is_empty() {
            convergences.push((
                i,
                tokio::spawn(converge(
                    client.clone(),
                    targets.clone(),
                    stores.len(),
                    gossip.as_ref().map(|_| stores_of.clone()),
                    Duration::from_secs_f64(cfg.converge_bound_s * 3.0),
                )),
            ));
        } else {
            run.overlapped = true;
        }
        if !reached {
            break;
        }
    }
    sleep_until(t0, cfg.duration.as_secs_f64(), &abort).await;
    stop.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(40), load).await;
    for (i, h) in convergences {
        if let (Ok(Ok(s)), Some(run)) = (
            tokio::time::timeout(Duration::from_secs(90), h).await,
            runs.get_mut(i),
        ) {
            run.converged_after_s = s;
        }
    }
    for (i, h) in departures {
        if let (Ok(Ok(s)), Some(run)) = (
            tokio::time::timeout(Duration::from_secs(90), h).await,
            runs.get_mut(i),
        ) {
            run.left_after_s = s;
        }
    }
    let _ = monitor.await;
    // Heal anything still active (an abort mid-window), then stop all.
    for w in &sched.windows {
        let _ = nemesis.end(&w.fault);
    }
    let storage_check = match (&s3, &storage) {
        (Some(s3), _) => Some(settle_bucket(&client, s3, &uploads, &abort).await),
        (None, Err(why)) => Some(crate::invariants::Check::Skipped(why.clone())),
        (None, Ok(_)) => None,
    };
    {
        let p = procs.clone();
        tokio::task::spawn_blocking(move || {
            if let Ok(mut p) = p.lock() {
                p.shutdown(Duration::from_secs(10));
            }
        })
        .await?;
    }
    if abort.load(Ordering::SeqCst) {
        notes.push("the run was interrupted (Ctrl-C) before its end".into());
    }
    let records = records.lock().map(|v| v.clone()).unwrap_or_default();
    let crashes = lock(&procs)?.crashes.clone();
    let facts = Facts {
        records: &records,
        crashes: &crashes,
        windows: &sched.windows,
        runs: &runs,
        warmup_s: sched.warmup_s,
        grace_s: cfg.grace_s,
        converge_bound_s: cfg.converge_bound_s,
        baseline,
        storage: storage_check,
        gossip: gossip.is_some(),
    };
    let invariants = invariants::evaluate(&facts);
    let (windows, quiet) = report::window_stats(&records, &sched.windows, &runs);
    notes.push(format!(
        "queriers: --query.info-interval={} --query.info-timeout={} --query.store-timeout={}; grace after heal {:.0}s",
        prometheus::TIMING.info_interval,
        prometheus::TIMING.info_timeout,
        prometheus::TIMING.store_timeout,
        cfg.grace_s
    ));
    let report = Report {
        seed: cfg.seed,
        duration_s: cfg.duration.as_secs_f64(),
        qps: cfg.qps,
        inject: cfg.inject,
        skein: cfg.skein.display().to_string(),
        topology: topology_lines(topo, layout),
        data: spec,
        schedule: sched,
        windows,
        quiet,
        overall: Stats::of(records.iter()),
        passed: invariants::all_pass(&invariants),
        invariants,
        crashes,
        notes,
    };
    report::json::write(&cfg.out_dir, &report, &records)?;
    std::fs::write(
        cfg.out_dir.join("report.md"),
        report::markdown::render(&report),
    )?;
    if let Err(e) = report::chart::write(&cfg.out_dir.join("chart.svg"), &report, &records) {
        tracing::warn!("chart: {e}");
    }
    Ok(report)
}

fn topology_lines(topo: &Topology, layout: &Layout) -> Vec<String> {
    let mut v = vec![format!(
        "router namespace {} with one bridge per cluster subnet 10.77.N.0/24, ip_forward on",
        topo.router.name
    )];
    for ((c, r), (host, addr)) in &layout.pods {
        v.push(format!(
            "{host} ({addr}): Prometheus {} (cluster=c{}, replica=\"{r}\") + sidecar {}",
            Layout::prom(*c, *r),
            c + 1,
            Layout::sidecar(*c, *r)
        ));
    }
    for (c, (host, addr)) in &layout.queriers {
        v.push(format!(
            "{host} ({addr}): querier {} over every sidecar (static --query.store)",
            Layout::querier(*c)
        ));
    }
    v
}

/// Sleeps until `at_s` after `t0`; false if aborted first.
async fn sleep_until(t0: Instant, at_s: f64, abort: &AtomicBool) -> bool {
    let target = t0 + Duration::from_secs_f64(at_s.max(0.0));
    while Instant::now() < target {
        if abort.load(Ordering::SeqCst) {
            return false;
        }
        let left = target.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(200))).await;
    }
    !abort.load(Ordering::SeqCst)
}

/// Restarts processes that exited on their own (the exit is recorded).
async fn monitor(procs: Arc<Mutex<Procs>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(mut p) = procs.lock() else { return };
        for name in p.check() {
            tracing::error!(process = %name, "exited unexpectedly; restarting");
            let _ = p.start(&name);
        }
    }
}

/// The (cluster, StoreAPI address) a fault takes away from its cluster's
/// gossip view: a killed sidecar, or an isolated pod.
fn departing_store(layout: &Layout, f: &crate::schedule::Fault) -> Option<(usize, String)> {
    use crate::schedule::Fault;
    layout.pods.iter().find_map(|((c, r), (host, addr))| {
        let hit = match f {
            Fault::KillRestart { proc } => *proc == Layout::sidecar(*c, *r),
            Fault::Isolate { host: h } => h == host,
            _ => false,
        };
        hit.then(|| (*c, format!("{addr}:10901")))
    })
}

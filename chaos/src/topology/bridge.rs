//! The run's network: a router namespace holding one Linux bridge per
//! subnet (10.77.N.0/24) with IP forwarding between them, and one
//! namespace per host attached to its subnet's bridge by a veth pair.
//! Nothing is created in the root namespace, so concurrent runs (with
//! different name prefixes) cannot collide on addresses.

use std::collections::BTreeSet;

use super::netns::{Netns, NetnsError, PREFIX};

/// One host: a namespace with an address on a subnet.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: Netns,
    pub subnet: u8,
    pub addr: String,
}

/// All namespaces of one run; dropping it deletes them (and kills what
/// still runs inside).
#[derive(Debug)]
pub struct Topology {
    pub prefix: String,
    pub router: Netns,
    hosts: Vec<Host>,
    bridges: BTreeSet<u8>,
    torn_down: bool,
}

/// The router's address on a subnet.
pub fn gateway(subnet: u8) -> String {
    format!("10.77.{subnet}.1")
}

/// The nft `ip saddr` form of a subnet.
pub fn cidr(subnet: u8) -> String {
    format!("10.77.{subnet}.0/24")
}

impl Topology {
    /// Creates the router namespace; the prefix is `skc<pid>-` unless a
    /// tag is given (tests use one per test).
    pub fn new(tag: &str) -> Result<Topology, NetnsError> {
        let prefix = format!("{PREFIX}{}-{tag}", std::process::id());
        let router = Netns::create(&format!("{prefix}r"))?;
        let topo = Topology {
            prefix,
            router,
            hosts: Vec::new(),
            bridges: BTreeSet::new(),
            torn_down: false,
        };
        topo.router.command("sysctl").map(|mut c| {
            c.args(["-q", "-w", "net.ipv4.ip_forward=1"]);
            super::netns::run(&mut c)
        })??;
        Ok(topo)
    }

    fn ensure_bridge(&mut self, subnet: u8) -> Result<(), NetnsError> {
        if self.bridges.contains(&subnet) {
            return Ok(());
        }
        let br = format!("br{subnet}");
        self.router.ip(&["link", "add", &br, "type", "bridge"])?;
        self.router.ip(&[
            "addr",
            "add",
            &format!("{}/24", gateway(subnet)),
            "dev",
            &br,
        ])?;
        self.router.ip(&["link", "set", &br, "up"])?;
        self.bridges.insert(subnet);
        Ok(())
    }

    /// Adds host number `host` (2..=250) on `subnet`, named
    /// `<prefix><name>`.
    pub fn add_host(&mut self, name: &str, subnet: u8, host: u8) -> Result<Host, NetnsError> {
        self.ensure_bridge(subnet)?;
        let ns = Netns::create(&format!("{}{name}", self.prefix))?;
        let addr = format!("10.77.{subnet}.{host}");
        // Register first so a failure below still tears the namespace down.
        let h = Host {
            ns: ns.clone(),
            subnet,
            addr: addr.clone(),
        };
        self.hosts.push(h.clone());
        let veth = format!("v{subnet}h{host}");
        self.router.ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ])?;
        self.router
            .ip(&["link", "set", &veth, "master", &format!("br{subnet}")])?;
        self.router.ip(&["link", "set", &veth, "up"])?;
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
        ns.ip(&["route", "add", "default", "via", &gateway(subnet)])?;
        Ok(h)
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Deletes every namespace of the run (idempotent).
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        for h in self.hosts.iter().rev() {
            h.ns.destroy();
        }
        self.router.destroy();
        self.torn_down = true;
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.teardown();
    }
}

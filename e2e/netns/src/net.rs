//! Network namespaces linked through one bridge, and the processes that run in them.
//!
//! Layout of one [`Net`] (every name starts with the run's id `mz<pid>n<k>`):
//!
//! ```text
//!   root namespace (the test)            namespace <id>-br                 namespace <id>-<node>
//!   <id>h  198.18.X.1/24  ── veth ──  vhost ─┐
//!                                            br0 ── v<octet> ── veth ──  eth0  198.18.X.<octet>/24
//!                                            └── v<octet> ── ...         (one per node)
//! ```
//!
//! The bridge lives in a namespace of its own; the test reaches every node through its own leg
//! (`<id>h`, the only interface it adds to the root namespace). Each run takes a free /24 of
//! 198.18.0.0/15 (chosen under a file lock, so concurrent runs never share one).
//!
//! Faults: [`Net::cut`] sets a node's bridge port down (nothing in or out), [`Net::block`] drops
//! traffic between a node and given addresses (nftables in the node's namespace),
//! [`Net::set_loss`] drops a percentage of it (`numgen random mod 100 < N drop`),
//! [`Net::try_netem_delay`] adds delay with `tc netem` when the kernel has it.
//!
//! Processes run as `ip netns exec <ns> setpriv --pdeathsig KILL -- <program> ...` (so they die
//! with the test even if it is SIGKILLed), log to `<dir>/logs/<name>.log`, and can be killed
//! (-9), terminated (SIGTERM) and restarted. Dropping the `Net` kills every process and removes
//! every namespace and link, also when the test panicked; unless [`Net::pass`] was called it
//! first prints the tail of every log (also those registered with [`Net::add_log`]: processes
//! other harnesses run in a node through [`Net::command_prefix`]) and keeps the directory.
//! [`Net::new`] also removes what runs killed before their clean-up left behind.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    fs::{File, OpenOptions},
    io::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::{Context as _, bail};

/// Where the subnet allocation lock lives.
const LOCK_FILE: &str = "/run/mosaic-netns.lock";
/// Every namespace and root link this harness creates starts with this.
const PREFIX: &str = "mz";
/// The bridge inside the bridge namespace.
const BRIDGE: &str = "br0";
/// The interface name of a node's leg inside its namespace.
const NODE_IF: &str = "eth0";
/// The nftables table the harness owns in a node's namespace.
const NFT_TABLE: &str = "mosaic_netns";

static RUNS: AtomicU32 = AtomicU32::new(0);

/// One node: a network namespace with one address on the bridge.
#[derive(Clone, Debug)]
pub struct Node {
    /// The harness's name for it (`global-1`, `zone-a`, `openbao`, ...).
    pub name: String,
    /// The namespace's name (`mz<pid>n<k>-<name>`).
    pub ns: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its port on the bridge (in the bridge namespace).
    bridge_port: String,
}

/// nftables state of one node: peers it cannot talk to, and peers it loses packets with.
#[derive(Clone, Debug, Default)]
struct Rules {
    blocked: BTreeSet<Ipv4Addr>,
    loss: BTreeMap<Ipv4Addr, u8>,
}

/// A process the harness started in a node.
struct Proc {
    node: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    exited: Option<ExitStatus>,
    starts: u32,
}

/// The namespaces, bridge and processes of one test run.
pub struct Net {
    id: String,
    scenario: String,
    subnet: [u8; 3],
    bridge_ns: String,
    host_if: String,
    nodes: BTreeMap<String, Node>,
    rules: BTreeMap<String, Rules>,
    netem: BTreeSet<String>,
    procs: BTreeMap<String, Proc>,
    /// Logs of processes others run in the nodes (testkit's globals and zones), by name.
    other_logs: BTreeMap<String, PathBuf>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    passed: bool,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("id", &self.id)
            .field("subnet", &self.subnet)
            .finish_non_exhaustive()
    }
}

/// Runs a command, failing with its stderr.
fn run(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs `ip ARGS`.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&run("ip", args)?.stdout).into_owned())
}

/// The effective user id, from /proc/self/status.
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The pid in a harness name `mz<pid>n<k>...`, if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || !rest[digits.len()..].starts_with('n') {
        return None;
    }
    digits.parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills every process in namespace `ns` and deletes it.
fn remove_namespace(ns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("sh")
                .args(["-c", "kill -KILL \"$1\"", "sh", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
}

/// Removes namespaces and root links left by harness runs whose process is gone (a test killed
/// by a timeout never runs its clean-up).
pub fn remove_stale() -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(list) = ip(&["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if owner_pid(ns).is_some_and(|pid| !alive(pid)) {
                remove_namespace(ns);
                removed.push(format!("netns {ns}"));
            }
        }
    }
    if let Ok(links) = ip(&["-o", "link", "show"]) {
        for l in links.lines() {
            let Some(name) = l.split(':').nth(1).map(str::trim) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if owner_pid(name).is_some_and(|pid| !alive(pid)) {
                let _ = Command::new("ip")
                    .args(["link", "del", name])
                    .stderr(Stdio::null())
                    .status();
                removed.push(format!("link {name}"));
            }
        }
    }
    removed
}

/// Checks that this machine can run the suite, saying why not.
fn preflight() -> anyhow::Result<()> {
    let fix = "the network-namespace suite (e2e/netns) needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) \
               and iproute2 + nftables (./scripts/setup-test-env.sh installs them); it fails \
               rather than skips without them";
    match euid() {
        Some(0) => {}
        Some(uid) => bail!("running as uid {uid}, not root: {fix}"),
        None => bail!("cannot read the user id from /proc/self/status: {fix}"),
    }
    for (tool, args) in [
        ("ip", &["-V"][..]),
        ("nft", &["--version"][..]),
        ("tc", &["-V"][..]),
        ("setpriv", &["--version"][..]),
    ] {
        run(tool, args).with_context(|| format!("`{tool}` is not usable: {fix}"))?;
    }
    Ok(())
}

/// Whether this kernel has the netem qdisc: tries one on the loopback of a throw-away
/// namespace. `Err` carries the kernel's answer (e.g. `Specified qdisc kind is unknown`).
pub fn netem_probe() -> Result<(), String> {
    let ns = format!(
        "{PREFIX}{}n{}-netem-probe",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    );
    ip(&["netns", "add", &ns]).map_err(|e| format!("{e:#}"))?;
    let out = Command::new("tc")
        .args([
            "-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output();
    remove_namespace(&ns);
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run tc: {e}")),
    }
}

/// Subnets (third octet index 0..512 of 198.18.0.0/15) with an address in the root namespace.
fn subnets_in_use() -> anyhow::Result<BTreeSet<u16>> {
    let out = ip(&["-4", "-o", "addr", "show"])?;
    let mut used = BTreeSet::new();
    for word in out.split_whitespace() {
        let Some(addr) = word.split('/').next() else {
            continue;
        };
        if let Ok(a) = addr.parse::<Ipv4Addr>() {
            let o = a.octets();
            if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
                used.insert(u16::from(o[1] - 18) * 256 + u16::from(o[2]));
            }
        }
    }
    Ok(used)
}

// === impl Net ===

impl Net {
    /// Creates the bridge namespace and the test's leg for `scenario` (a short name printed in
    /// messages). Fails, saying why, when namespaces cannot be created.
    pub fn new(scenario: &str) -> anyhow::Result<Self> {
        preflight()?;
        let removed = remove_stale();
        if !removed.is_empty() {
            println!(
                "netns[{scenario}]: removed leftovers of killed runs: {}",
                removed.join(", ")
            );
        }
        let id = format!(
            "{PREFIX}{}n{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("mosaic-netns-{scenario}-{id}-"))
            .tempdir()
            .context("creating the run's temp dir")?;
        std::fs::create_dir_all(dir.path().join("logs"))?;
        let mut net = Self {
            bridge_ns: format!("{id}-br"),
            host_if: format!("{id}h"),
            id,
            scenario: scenario.to_string(),
            subnet: [198, 18, 0],
            nodes: BTreeMap::new(),
            rules: BTreeMap::new(),
            netem: BTreeSet::new(),
            procs: BTreeMap::new(),
            other_logs: BTreeMap::new(),
            dir_path: dir.path().to_path_buf(),
            dir: Some(dir),
            passed: false,
        };
        net.create_bridge()
            .context("creating the bridge namespace and the test's leg")?;
        Ok(net)
    }

    fn create_bridge(&mut self) -> anyhow::Result<()> {
        let br = self.bridge_ns.clone();
        ip(&["netns", "add", &br]).context(
            "cannot create a network namespace (the suite needs root and iproute2; it fails rather than skips)",
        )?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        ip(&["-n", &br, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", BRIDGE, "up"])?;
        // The subnet is chosen and claimed (an address on the root leg) under a lock.
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .with_context(|| format!("opening {LOCK_FILE}"))?;
        lock.lock()
            .with_context(|| format!("locking {LOCK_FILE}"))?;
        let used = subnets_in_use()?;
        let Some(index) = (0..512u16).find(|i| !used.contains(i)) else {
            bail!("every /24 of 198.18.0.0/15 is in use in the root namespace");
        };
        self.subnet = [198, 18 + (index / 256) as u8, (index % 256) as u8];
        let host = self.host_if.clone();
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", "vhost", "netns", &br,
        ])?;
        ip(&["-n", &br, "link", "set", "vhost", "master", BRIDGE, "up"])?;
        ip(&["addr", "add", &format!("{}/24", self.addr(1)), "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        drop(lock);
        Ok(())
    }

    /// The run's id (`mz<pid>n<k>`), the prefix of every namespace it creates.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scenario name given to [`Net::new`].
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// The address `198.18.X.<host>` in this run's subnet.
    pub fn addr(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], host)
    }

    /// The test's own address (its leg in the root namespace).
    pub fn host_ip(&self) -> Ipv4Addr {
        self.addr(1)
    }

    /// The run's directory (logs, configs, data).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// Adds node `name` at address `.host` (2..=254, unique) in a namespace of its own.
    pub fn add_node(&mut self, name: &str, host: u8) -> anyhow::Result<Node> {
        if !(2..=254).contains(&host) || self.nodes.values().any(|n| n.ip == self.addr(host)) {
            bail!("address .{host} for node {name} is taken or out of range");
        }
        if self.nodes.contains_key(name) {
            bail!("node {name} exists already");
        }
        let node = Node {
            name: name.to_string(),
            ns: format!("{}-{name}", self.id),
            ip: self.addr(host),
            bridge_port: format!("v{host}"),
        };
        let (ns, br, port) = (&node.ns, &self.bridge_ns, &node.bridge_port);
        ip(&["netns", "add", ns]).with_context(|| format!("creating namespace {ns}"))?;
        // Registered before the links, so a failure below still removes the namespace.
        self.nodes.insert(name.to_string(), node.clone());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", ns, "link", "add", NODE_IF, "type", "veth", "peer", "name", port, "netns", br,
        ])?;
        ip(&["-n", br, "link", "set", port, "master", BRIDGE, "up"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", node.ip),
            "dev",
            NODE_IF,
        ])?;
        ip(&["-n", ns, "link", "set", NODE_IF, "up"])?;
        Ok(node)
    }

    /// Adds node `name` at the next free address from `.100` up.
    pub fn add_host(&mut self, name: &str) -> anyhow::Result<Node> {
        let taken: BTreeSet<Ipv4Addr> = self.nodes.values().map(|n| n.ip).collect();
        let Some(host) = (100..=254u8).find(|h| !taken.contains(&self.addr(*h))) else {
            bail!("no free address left for node {name}");
        };
        self.add_node(name, host)
    }

    /// Node `name`.
    pub fn node(&self, name: &str) -> anyhow::Result<&Node> {
        self.nodes
            .get(name)
            .with_context(|| format!("no node named {name}"))
    }

    /// Cuts node `name`'s link: its bridge port goes down, nothing gets in or out (TCP
    /// connections are not reset; they stall).
    pub fn cut(&mut self, name: &str) -> anyhow::Result<()> {
        let port = self.node(name)?.bridge_port.clone();
        ip(&["-n", &self.bridge_ns, "link", "set", &port, "down"])?;
        Ok(())
    }

    /// Restores node `name`'s link after [`Net::cut`].
    pub fn restore(&mut self, name: &str) -> anyhow::Result<()> {
        let port = self.node(name)?.bridge_port.clone();
        ip(&["-n", &self.bridge_ns, "link", "set", &port, "up"])?;
        Ok(())
    }

    /// Drops every packet between node `name` and `peers` (both directions), in the node's
    /// namespace; the rest of its traffic flows.
    pub fn block(&mut self, name: &str, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
        self.node(name)?;
        let r = self.rules.entry(name.to_string()).or_default();
        r.blocked.extend(peers.iter().copied());
        self.apply_rules(name)
    }

    /// Lifts [`Net::block`] for `peers`.
    pub fn unblock(&mut self, name: &str, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
        self.node(name)?;
        let r = self.rules.entry(name.to_string()).or_default();
        for p in peers {
            r.blocked.remove(p);
        }
        self.apply_rules(name)
    }

    /// Drops `percent`% of the packets between node `name` and `peers`, each direction, at
    /// random (nftables `numgen random mod 100 < percent drop`); 0 removes the rule.
    pub fn set_loss(&mut self, name: &str, peers: &[Ipv4Addr], percent: u8) -> anyhow::Result<()> {
        self.node(name)?;
        let r = self.rules.entry(name.to_string()).or_default();
        for p in peers {
            if percent == 0 {
                r.loss.remove(p);
            } else {
                r.loss.insert(*p, percent.min(100));
            }
        }
        self.apply_rules(name)
    }

    /// Node `name`'s nftables ruleset as `nft list ruleset` prints it.
    pub fn ruleset(&self, name: &str) -> anyhow::Result<String> {
        let ns = &self.node(name)?.ns;
        Ok(String::from_utf8_lossy(
            &run("ip", &["netns", "exec", ns, "nft", "list", "ruleset"])?.stdout,
        )
        .into_owned())
    }

    fn apply_rules(&self, name: &str) -> anyhow::Result<()> {
        let ns = self.node(name)?.ns.clone();
        let r = self.rules.get(name).cloned().unwrap_or_default();
        let set = |ips: &mut dyn Iterator<Item = &Ipv4Addr>| {
            ips.map(Ipv4Addr::to_string).collect::<Vec<_>>().join(", ")
        };
        let mut input = Vec::new();
        let mut output = Vec::new();
        if !r.blocked.is_empty() {
            let s = set(&mut r.blocked.iter());
            input.push(format!("ip saddr {{ {s} }} drop"));
            output.push(format!("ip daddr {{ {s} }} drop"));
        }
        let mut by_percent: BTreeMap<u8, Vec<Ipv4Addr>> = BTreeMap::new();
        for (ip, pct) in &r.loss {
            by_percent.entry(*pct).or_default().push(*ip);
        }
        for (pct, ips) in by_percent {
            let s = set(&mut ips.iter());
            input.push(format!(
                "ip saddr {{ {s} }} numgen random mod 100 < {pct} drop"
            ));
            output.push(format!(
                "ip daddr {{ {s} }} numgen random mod 100 < {pct} drop"
            ));
        }
        // Declaring the table first makes the delete succeed whether or not it existed; the
        // whole script is applied atomically.
        let mut script = format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n");
        if !input.is_empty() {
            script.push_str(&format!(
                "table inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    {}\n  }}\n  chain output {{\n    type filter hook output priority 0; policy accept;\n    {}\n  }}\n}}\n",
                input.join("\n    "),
                output.join("\n    ")
            ));
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running nft")?;
        child
            .stdin
            .take()
            .context("nft stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft in {ns} refused the ruleset ({}):\n{script}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Adds `delay` to every packet node `name` sends to `peers` with `tc netem` (a prio qdisc
    /// whose third band is netem, u32 filters on the peers' addresses). `Err` with the kernel's
    /// answer when netem is missing (then nothing is left installed).
    pub fn try_netem_delay(
        &mut self,
        name: &str,
        peers: &[Ipv4Addr],
        delay: Duration,
    ) -> anyhow::Result<()> {
        let ns = self.node(name)?.ns.clone();
        let tc = |args: &[&str]| -> anyhow::Result<()> {
            let mut all = vec!["-n", ns.as_str()];
            all.extend_from_slice(args);
            run("tc", &all).map(|_| ())
        };
        let ms = format!("{}ms", delay.as_millis());
        let result = (|| {
            tc(&[
                "qdisc", "add", "dev", NODE_IF, "root", "handle", "1:", "prio",
            ])?;
            tc(&[
                "qdisc", "add", "dev", NODE_IF, "parent", "1:3", "handle", "30:", "netem", "delay",
                &ms,
            ])?;
            for p in peers {
                tc(&[
                    "filter",
                    "add",
                    "dev",
                    NODE_IF,
                    "parent",
                    "1:0",
                    "protocol",
                    "ip",
                    "prio",
                    "1",
                    "u32",
                    "match",
                    "ip",
                    "dst",
                    &format!("{p}/32"),
                    "flowid",
                    "1:3",
                ])?;
            }
            anyhow::Ok(())
        })();
        match result {
            Ok(()) => {
                self.netem.insert(name.to_string());
                Ok(())
            }
            Err(e) => {
                let _ = Command::new("tc")
                    .args(["-n", &ns, "qdisc", "del", "dev", NODE_IF, "root"])
                    .stderr(Stdio::null())
                    .status();
                Err(e)
            }
        }
    }

    /// Removes what [`Net::try_netem_delay`] installed on node `name`.
    pub fn clear_netem(&mut self, name: &str) -> anyhow::Result<()> {
        let ns = self.node(name)?.ns.clone();
        if self.netem.remove(name) {
            run("tc", &["-n", &ns, "qdisc", "del", "dev", NODE_IF, "root"])?;
        }
        Ok(())
    }

    /// Sets sysctl `key` (e.g. `net.ipv4.tcp_orphan_retries`) to `value` in node `name`'s
    /// namespace only.
    pub fn sysctl(&self, name: &str, key: &str, value: &str) -> anyhow::Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.exec(
            name,
            "sh",
            &["-c", "echo \"$1\" > \"$2\"", "sh", value, &path],
        )?;
        Ok(())
    }

    /// Runs `ip netns exec <node ns> CMD ARGS` to completion (for small set-up commands).
    pub fn exec(&self, node: &str, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let ns = self.node(node)?.ns.clone();
        let mut all = vec!["netns", "exec", ns.as_str(), program];
        all.extend_from_slice(args);
        Ok(String::from_utf8_lossy(&run("ip", &all)?.stdout).into_owned())
    }

    /// What a process runs under to live in node `node`: `ip netns exec <ns> setpriv
    /// --pdeathsig KILL --` (so it dies with the test even if the test is SIGKILLed), the prefix
    /// [`Net::spawn`] uses, for processes other harnesses run (testkit's `Host`).
    pub fn command_prefix(&self, node: &str) -> anyhow::Result<Vec<OsString>> {
        let ns = self.node(node)?.ns.clone();
        let prefix = [
            "ip",
            "netns",
            "exec",
            &ns,
            "setpriv",
            "--pdeathsig",
            "KILL",
            "--",
        ];
        Ok(prefix.iter().map(OsString::from).collect())
    }

    /// Has a failed run print the tail of `log` too, under `name` (a process another harness
    /// runs in a node).
    pub fn add_log(&mut self, name: &str, log: &Path) {
        self.other_logs.insert(name.to_string(), log.to_path_buf());
    }

    /// Starts process `name` (unique) in node `node`: `program args` with `env`, logging to
    /// `<dir>/logs/<name>.log`.
    pub fn spawn(
        &mut self,
        name: &str,
        node: &str,
        program: &Path,
        args: &[OsString],
        env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        self.node(node)?;
        if self.procs.get(name).is_some_and(|p| p.child.is_some()) {
            bail!("process {name} is running already");
        }
        let proc = Proc {
            node: node.to_string(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            log: self.dir().join("logs").join(format!("{name}.log")),
            child: None,
            exited: None,
            starts: 0,
        };
        self.procs.insert(name.to_string(), proc);
        self.start(name)
    }

    /// Starts process `name` again with the same command (after [`Net::kill`] / [`Net::term`]).
    pub fn start(&mut self, name: &str) -> anyhow::Result<()> {
        let (ns, prefix) = {
            let p = self.proc(name)?;
            (
                self.node(&p.node)?.ns.clone(),
                self.command_prefix(&p.node)?,
            )
        };
        let p = self
            .procs
            .get_mut(name)
            .with_context(|| format!("no process {name}"))?;
        if p.child.is_some() {
            bail!("process {name} is running already");
        }
        p.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&p.log)?;
        writeln!(
            log,
            "=== netns harness: start #{} of {name} in {ns}: {} {}",
            p.starts,
            p.program.display(),
            p.args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        let mut cmd = Command::new(&prefix[0]);
        cmd.args(&prefix[1..])
            .arg(&p.program)
            .args(&p.args)
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        p.child = Some(
            cmd.spawn()
                .with_context(|| format!("starting {name} ({})", p.program.display()))?,
        );
        p.exited = None;
        Ok(())
    }

    fn proc(&self, name: &str) -> anyhow::Result<&Proc> {
        self.procs
            .get(name)
            .with_context(|| format!("no process {name}"))
    }

    /// SIGKILLs process `name` (kill -9) and reaps it.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let p = self
            .procs
            .get_mut(name)
            .with_context(|| format!("no process {name}"))?;
        if let Some(mut c) = p.child.take() {
            let _ = c.kill();
            p.exited = c.wait().ok();
        }
        Ok(())
    }

    /// Sends SIGTERM to process `name` and waits (up to `grace`, then SIGKILL) for it to exit;
    /// returns its exit status.
    pub async fn term(&mut self, name: &str, grace: Duration) -> anyhow::Result<ExitStatus> {
        let p = self
            .procs
            .get_mut(name)
            .with_context(|| format!("no process {name}"))?;
        let Some(mut child) = p.child.take() else {
            bail!("process {name} is not running");
        };
        let pid = child.id().to_string();
        let _ = Command::new("sh")
            .args(["-c", "kill -TERM \"$1\"", "sh", &pid])
            .status();
        let deadline = tokio::time::Instant::now() + grace;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                break child.wait()?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        p.exited = Some(status);
        Ok(status)
    }

    /// Whether process `name` is running (reaps it if it exited).
    pub fn is_running(&mut self, name: &str) -> bool {
        let Some(p) = self.procs.get_mut(name) else {
            return false;
        };
        let Some(c) = p.child.as_mut() else {
            return false;
        };
        match c.try_wait() {
            Ok(Some(status)) => {
                p.exited = Some(status);
                p.child = None;
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// How process `name` exited, if it did (see [`Net::is_running`]).
    pub fn exit_status(&mut self, name: &str) -> Option<ExitStatus> {
        self.is_running(name);
        self.procs.get(name).and_then(|p| p.exited)
    }

    /// The pid of running process `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs
            .get(name)
            .and_then(|p| p.child.as_ref())
            .map(Child::id)
    }

    /// Process `name`'s whole log.
    pub fn log(&self, name: &str) -> String {
        self.procs
            .get(name)
            .and_then(|p| std::fs::read_to_string(&p.log).ok())
            .unwrap_or_default()
    }

    /// The names of every process started so far.
    pub fn processes(&self) -> Vec<String> {
        self.procs.keys().cloned().collect()
    }

    /// The last `lines` lines of process `name`'s log.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let log = self.log(name);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Marks the run as passed: dropping it no longer prints logs or keeps its directory (a test
    /// that fails, by an error or a panic, never gets here).
    /// With `MOSAIC_NETNS_KEEP=1` the directory is kept anyway (and its path printed).
    pub fn pass(&mut self) {
        self.passed = true;
        if std::env::var("MOSAIC_NETNS_KEEP").is_ok_and(|v| v == "1")
            && let Some(d) = self.dir.take()
        {
            println!(
                "netns[{}]: MOSAIC_NETNS_KEEP=1: files kept in {}",
                self.scenario,
                d.keep().display()
            );
        }
    }

    fn report_failure(&mut self) {
        let dir = self.dir().display().to_string();
        eprintln!(
            "netns[{}]: FAILED; the tail of every process log follows (all files kept in {dir})",
            self.scenario
        );
        let names: Vec<String> = self.procs.keys().cloned().collect();
        for name in names {
            let running = self.is_running(&name);
            let state = match (running, self.procs.get(&name).and_then(|p| p.exited)) {
                (true, _) => "running".to_string(),
                (false, Some(s)) => format!("exited: {s}"),
                (false, None) => "not running".to_string(),
            };
            eprintln!(
                "----- {name} ({state}) log tail -----\n{}",
                self.log_tail(&name, 40)
            );
        }
        for (name, log) in &self.other_logs {
            let text = read_text(log);
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "----- {name} log tail -----\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        for (node, r) in &self.rules {
            eprintln!(
                "----- nftables of {node}: blocked {:?}, loss {:?}",
                r.blocked, r.loss
            );
        }
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
    }

    /// Every namespace of this run (nodes, then the bridge).
    fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self.nodes.values().map(|n| n.ns.clone()).collect();
        all.push(self.bridge_ns.clone());
        all
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if !self.passed {
            self.report_failure();
        }
        let names: Vec<String> = self.procs.keys().cloned().collect();
        for name in names {
            let _ = self.kill(&name);
        }
        for ns in self.namespaces() {
            remove_namespace(&ns);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
    }
}

/// Reads a whole file as text, empty if it is missing.
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Creates a file with `contents` (parents created).
pub fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

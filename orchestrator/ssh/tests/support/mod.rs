//! Real OpenSSH servers for the orchestrator's tests.
//!
//! Each [`Sshd`] is Debian's `/usr/sbin/sshd -D -e -f <config>` on its own port of 127.0.0.1, with
//! its own generated ed25519 host key, an authorized_keys holding a per-test client key,
//! `UsePAM no`, `StrictModes no` and the internal SFTP server. Three of them stand for the client,
//! host and NIC machines of a testbed ([`Testbed`]); each machine has its own working directory.
//! Every sshd is stopped by its PID when dropped, with the session processes it forked, and any
//! role process still running in a testbed's directories is killed by its process group.

#![allow(dead_code)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use naam_ssh::Inventory;

/// sshd binary (Debian's openssh-server), by absolute path.
pub const SSHD: &str = "/usr/sbin/sshd";
/// Polls of a new sshd's port before giving up.
const SSHD_READY_POLLS_MAX: u32 = 200;
/// Interval between those polls.
const SSHD_READY_POLL_MS: u64 = 25;
/// A file in an sshd's directory whose lines are appended to its configuration (e.g. `SetEnv`).
pub const EXTRA_CONFIG: &str = "sshd_config.extra";
/// Ports tried before giving up starting an sshd (another process may grab a free port first).
const SSHD_PORT_TRIES_MAX: u32 = 5;

/// Runs a program, panicking with its stderr when it fails.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Generates an ed25519 key pair without passphrase at `path` (and `path.pub`).
pub fn keygen(path: &Path, comment: &str) {
    run_ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            path.to_str().unwrap(),
        ],
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

/// One running sshd.
#[derive(Debug)]
pub struct Sshd {
    /// Its name (also the node's name).
    pub name: String,
    /// Its directory (config, keys, log).
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl Sshd {
    /// Starts an sshd for `name` in `dir`, trusting `client_pub` (a public key file).
    pub fn start(dir: &Path, name: &str, client_pub: &Path) -> Sshd {
        fs::create_dir_all(dir).unwrap();
        fs::create_dir_all("/run/sshd").expect("create /run/sshd (privilege separation directory)");
        let host_key = dir.join("host_ed25519");
        if !host_key.exists() {
            keygen(&host_key, name);
        }
        fs::copy(client_pub, dir.join("authorized_keys")).unwrap();
        let mut sshd = Sshd {
            name: name.into(),
            dir: dir.to_path_buf(),
            port: 0,
            child: None,
        };
        for _ in 0..SSHD_PORT_TRIES_MAX {
            if sshd.try_start(free_port()) {
                return sshd;
            }
        }
        panic!(
            "sshd {name} did not start; log:\n{}",
            fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }

    fn try_start(&mut self, port: u16) -> bool {
        let config = self.dir.join("sshd_config");
        let d = self.dir.display();
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile none\nUsePAM no\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nAuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp internal-sftp\nMaxStartups 100\nMaxSessions 100\nLogLevel VERBOSE\n{}",
                fs::read_to_string(self.dir.join(EXTRA_CONFIG)).unwrap_or_default()
            ),
        )
        .unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sshd.log"))
            .unwrap();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn /usr/sbin/sshd");
        for _ in 0..SSHD_READY_POLLS_MAX {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                self.port = port;
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(SSHD_READY_POLL_MS));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts it again on the same port with the same host key (after [`Sshd::kill`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running sshd");
        for _ in 0..SSHD_PORT_TRIES_MAX {
            if self.try_start(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sshd {} did not restart on port {}", self.name, self.port);
    }

    /// The PID of the listening sshd.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the listener and every session process it forked (a machine dropping off the net).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let descendants = descendants_of(child.id());
            let _ = child.kill();
            let _ = child.wait();
            for pid in descendants {
                // SAFETY: plain kill(2) on a PID that descends from an sshd this test started.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
    }

    /// The host public key line (`ssh-ed25519 AAAA… comment`).
    pub fn host_key_pub(&self) -> String {
        fs::read_to_string(self.dir.join("host_ed25519.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key_pub())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// PIDs whose parent chain leads to `root` (read from /proc).
pub fn descendants_of(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let Some(ppid) = tail
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        parents.push((pid, ppid));
    }
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

/// Three sshd machines — `host0` (host), `nic0` (nic), `client0` (client) — with a client key,
/// a known_hosts file and a hosts file naming them.
#[derive(Debug)]
pub struct Testbed {
    /// Scratch directory (removed at drop).
    pub dir: tempfile::TempDir,
    /// The machines, in the order host0, nic0, client0.
    pub nodes: Vec<Sshd>,
    /// The client's private key.
    pub client_key: PathBuf,
    /// known_hosts with all three host keys.
    pub known_hosts: PathBuf,
}

/// Names and roles of the testbed's machines.
pub const NODES: [(&str, &str); 3] = [("host0", "host"), ("nic0", "nic"), ("client0", "client")];

impl Testbed {
    /// Starts the three machines.
    pub fn start() -> Testbed {
        let dir = tempfile::tempdir().unwrap();
        let client_key = dir.path().join("client_ed25519");
        keygen(&client_key, "naam-test-client");
        let client_pub = dir.path().join("client_ed25519.pub");
        let nodes: Vec<Sshd> = NODES
            .iter()
            .map(|(name, _)| Sshd::start(&dir.path().join("sshd").join(name), name, &client_pub))
            .collect();
        let known_hosts = dir.path().join("known_hosts");
        fs::write(
            &known_hosts,
            nodes.iter().map(Sshd::known_hosts_line).collect::<String>(),
        )
        .unwrap();
        for (name, _) in NODES {
            fs::create_dir_all(dir.path().join("work").join(name)).unwrap();
        }
        Testbed {
            dir,
            nodes,
            client_key,
            known_hosts,
        }
    }

    /// The remote working directory of a machine (on this box, absolute).
    pub fn workdir(&self, name: &str) -> PathBuf {
        self.dir.path().join("work").join(name)
    }

    /// The hosts file text for the testbed.
    pub fn hosts_toml(&self) -> String {
        let mut text = format!(
            "[defaults]\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
            self.client_key.display(),
            self.known_hosts.display()
        );
        for (index, (name, role)) in NODES.iter().enumerate() {
            text.push_str(&format!(
                "\n[[host]]\nname = \"{name}\"\nssh_host = \"127.0.0.1\"\nport = {}\nroles = [\"{role}\"]\n\
                 arch = \"{}\"\nlan_address = \"127.0.0.{}\"\ncores = 2\nworkdir = \"{}\"\n",
                self.nodes[index].port,
                std::env::consts::ARCH,
                index + 1,
                self.workdir(name).display()
            ));
        }
        text
    }

    /// The parsed inventory (written to `hosts.toml` in the scratch directory first).
    pub fn inventory(&self) -> Inventory {
        let path = self.dir.path().join("hosts.toml");
        fs::write(&path, self.hosts_toml()).unwrap();
        Inventory::load(&path).expect("testbed inventory is valid")
    }

    /// The machine named `name`.
    pub fn node(&mut self, name: &str) -> &mut Sshd {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("known node")
    }

    /// Kills every role process whose pid file is under `name`'s working directory (a machine
    /// crashing), by process group; only processes whose working directory is inside it.
    pub fn kill_role_processes(&self, name: &str) -> usize {
        kill_pid_files_under(&self.workdir(name))
    }
}

fn kill_pid_files_under(root: &Path) -> usize {
    let mut killed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "pid") {
                let Some(pid) = fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
                else {
                    continue;
                };
                let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
                if cwd.is_some_and(|cwd| cwd.starts_with(root)) {
                    // SAFETY: kill(2) of a process group led by a role process this test started
                    // (its working directory is inside the test's scratch directory).
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                    killed += 1;
                }
            }
        }
    }
    killed
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for (name, _) in NODES {
            kill_pid_files_under(&self.workdir(name));
        }
    }
}

/// The test seed: `NAAM_SEED` from the environment, or a fixed default; printed so a failing run
/// can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6e61_616d);
    eprintln!("NAAM_SEED={seed}");
    seed
}

/// Whether a process exists and is not a zombie (a zombie only waits for its reaper).
pub fn is_live(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, tail)| tail.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

/// Whether any live (non-zombie) process belongs to session `sid` — the orchestrator starts each
/// role process with `setsid`, so its session is its whole process tree.
pub fn session_is_live(sid: u32) -> bool {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            let Some((_, tail)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = tail.split_whitespace().collect();
            fields.len() > 3 && fields[0] != "Z" && fields[3] == sid.to_string()
        })
}

/// Kills every role process whose pid file is under `root` (see [`Testbed::kill_role_processes`]);
/// usable from a `'static` callback holding just the path.
pub fn kill_role_processes_under(root: &Path) -> usize {
    kill_pid_files_under(root)
}

/// The real `naam-role` binary: `NAAM_ROLE_BIN` when set, else built (or found up to date) by
/// the cargo running these tests. Built once per test binary.
pub fn role_binary() -> PathBuf {
    naam_launch::build_role_binary(
        env!("CARGO").as_ref(),
        env!("CARGO_MANIFEST_DIR").as_ref(),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

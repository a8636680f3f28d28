//! What this process costs, read from `/proc/self` (Linux): CPU time, resident memory,
//! threads and open file descriptors, for `mediabot load` and the resource tests.

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// One reading of the process's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessSample {
    /// When it was read.
    pub at: Instant,
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident set size, bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Anonymous resident memory, bytes (`RssAnon`: heap, stacks; no mapped binary pages).
    pub rss_anon_bytes: u64,
    /// Threads.
    pub threads: u64,
}

impl ProcessSample {
    /// Reads `/proc/self/stat` and `/proc/self/status`; `None` when they cannot be read
    /// (not Linux, or `/proc` not mounted).
    pub fn now() -> Option<Self> {
        Self::read("/proc/self")
    }

    /// Reads another process's counters (`/proc/<pid>`), e.g. a bot running beside
    /// `mediabot load`; `None` when it is gone or unreadable.
    pub fn of_pid(pid: u32) -> Option<Self> {
        Self::read(&format!("/proc/{pid}"))
    }

    fn read(dir: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after `) state`.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let kib = |key: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        Some(Self {
            at: Instant::now(),
            cpu: Duration::from_secs_f64((utime + stime) as f64 / USER_HZ),
            rss_bytes: kib("VmRSS:")? * 1024,
            rss_anon_bytes: kib("RssAnon:").unwrap_or(0) * 1024,
            threads: kib("Threads:")?,
        })
    }

    /// CPU used between `earlier` and `self`, as a percentage of **one core**
    /// (200 % = two cores busy).
    pub fn cpu_percent_since(&self, earlier: &Self) -> f64 {
        let wall = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let cpu = self.cpu.saturating_sub(earlier.cpu).as_secs_f64();
        cpu / wall * 100.0
    }
}

/// Open file descriptors of this process (sockets included), from `/proc/self/fd`.
pub fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Open sockets of this process: entries of `/proc/self/fd` that link to `socket:[…]`.
pub fn open_sockets() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

/// Open UDP sockets of this process (the media's): socket inodes of `/proc/self/fd` found in
/// `/proc/self/net/udp` and `udp6`.
pub fn open_udp_sockets() -> Option<usize> {
    let mine: std::collections::HashSet<u64> = socket_inodes("/proc/self/fd")?.collect();
    let mut n = 0;
    for table in ["/proc/self/net/udp", "/proc/self/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // Column 10 (0-based 9) is the inode; the first line is the header.
        n += text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(9)?.parse::<u64>().ok())
            .filter(|inode| mine.contains(inode))
            .count();
    }
    Some(n)
}

/// The process listening on TCP `port` (any local address), found through
/// `/proc/net/tcp{,6}` and the `/proc/<pid>/fd` links of the processes we may read; `None`
/// when no readable process listens there. For `mediabot load --bot` against a bot on this
/// machine.
pub fn tcp_listener_pid(port: u16) -> Option<u32> {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // Columns: sl local_address rem_address st … inode (0-based 9); LISTEN is 0A.
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && f.get(3) == Some(&"0A")
                && let Some(inode) = f.get(9).and_then(|i| i.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            socket_inodes(&format!("/proc/{pid}/fd"))
                .is_some_and(|mut all| all.any(|i| inodes.contains(&i)))
        })
}

/// The socket inodes among the open files listed in `fd_dir` (`/proc/<pid>/fd`); `None` if
/// the directory cannot be read.
fn socket_inodes(fd_dir: &str) -> Option<impl Iterator<Item = u64>> {
    Some(
        std::fs::read_dir(fd_dir)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| {
                l.to_string_lossy()
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse::<u64>()
                    .ok()
            }),
    )
}

/// CPU cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The 1-minute load average of the machine (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let a = ProcessSample::now().expect("/proc/self on Linux");
        assert!(a.rss_bytes > 0 && a.threads >= 1);
        assert!(a.rss_anon_bytes > 0 && a.rss_anon_bytes <= a.rss_bytes);
        let by_pid = ProcessSample::of_pid(std::process::id()).expect("/proc/<pid>");
        assert!(by_pid.rss_bytes > 0 && by_pid.threads >= 1);
        assert!(ProcessSample::of_pid(u32::MAX).is_none());
        // Burn a little CPU so the next reading can only be later and not smaller.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = ProcessSample::now().expect("again");
        assert!(b.cpu >= a.cpu);
        assert!(b.cpu_percent_since(&a) >= 0.0);
        assert!(open_fds().expect("fds") >= 3);
        // Other unit tests may hold UDP sockets meanwhile: the exact count is checked in
        // tests/call-teardown-frees-resources.rs, alone in its process.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert!(open_udp_sockets().expect("udp") >= 1);
        drop(socket);
        assert!(cores() >= 1);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(tcp_listener_pid(port), Some(std::process::id()));
        drop(listener);
        assert_eq!(tcp_listener_pid(port), None);
    }
}

//! CPU affinity: which CPUs a process (or this one) may run on.
//!
//! A benchmark on a small machine that lets the client and the server share every core
//! measures their contention with each other, not the client's cost: a client that gets
//! faster just leaves more room for the server, or less. Pinning the server to one CPU and
//! the client to the others makes each side's CPU time per operation a property of its own
//! code. [`CpuSplit::plan`] picks such a split from the CPUs this process may use,
//! [`pin_process`] pins a running process (every thread of it), and [`pin_current_thread`]
//! pins the calling thread, which threads it starts afterwards inherit (so call it before
//! building a multi-threaded runtime).
//!
//! Linux only: elsewhere every function answers [`std::io::ErrorKind::Unsupported`] and
//! [`CpuSplit::plan`] answers `None`.

/// One CPU for a server, the others for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSplit {
    /// The CPU the server runs on.
    pub server: usize,
    /// The CPUs the client runs on (at least one, never `server`).
    pub client: Vec<usize>,
}

impl CpuSplit {
    /// The split for the CPUs this process may run on: the last one for the server, the
    /// rest for the client. `None` with fewer than two CPUs (nothing to split) or where
    /// affinity is not supported.
    pub fn plan() -> Option<CpuSplit> {
        let cpus = allowed_cpus().ok()?;
        let (&server, client) = cpus.split_last()?;
        (!client.is_empty()).then(|| CpuSplit {
            server,
            client: client.to_vec(),
        })
    }

    /// The split as people read it: `server on CPU 1, client on CPUs 0`.
    pub fn describe(&self) -> String {
        let client: Vec<String> = self.client.iter().map(usize::to_string).collect();
        format!(
            "server on CPU {}, client on CPU{} {}",
            self.server,
            if self.client.len() == 1 { "" } else { "s" },
            client.join(",")
        )
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;

    fn to_io(e: nix::Error) -> std::io::Error {
        std::io::Error::from_raw_os_error(e as i32)
    }

    fn cpu_set(cpus: &[usize]) -> std::io::Result<CpuSet> {
        if cpus.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an empty CPU list: name at least one CPU",
            ));
        }
        let mut set = CpuSet::new();
        for &cpu in cpus {
            set.set(cpu).map_err(to_io)?;
        }
        Ok(set)
    }

    pub(super) fn allowed_cpus() -> std::io::Result<Vec<usize>> {
        let set = sched_getaffinity(Pid::from_raw(0)).map_err(to_io)?;
        Ok((0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect())
    }

    pub(super) fn pin_thread(tid: i32, cpus: &[usize]) -> std::io::Result<()> {
        sched_setaffinity(Pid::from_raw(tid), &cpu_set(cpus)?).map_err(to_io)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    fn unsupported() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "CPU affinity is only supported on Linux",
        )
    }

    pub(super) fn allowed_cpus() -> std::io::Result<Vec<usize>> {
        Err(unsupported())
    }

    pub(super) fn pin_thread(_tid: i32, _cpus: &[usize]) -> std::io::Result<()> {
        Err(unsupported())
    }
}

/// The CPUs this process may run on, in increasing order.
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    imp::allowed_cpus()
}

/// Restricts the calling thread to `cpus`. Threads it starts afterwards inherit the
/// restriction, so called before a runtime starts its workers it pins the whole runtime.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    imp::pin_thread(0, cpus)
}

/// Restricts every thread of process `pid` to `cpus`. Threads the process starts later
/// inherit the restriction from the thread that starts them.
pub fn pin_process(pid: u32, cpus: &[usize]) -> std::io::Result<()> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    for task in tasks {
        let tid: i32 = task?
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a non-numeric thread id")
            })?;
        match imp::pin_thread(tid, cpus) {
            Ok(()) => {}
            // The thread ended between listing and pinning.
            Err(e) if e.raw_os_error() == Some(3 /* ESRCH */) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The CPUs the kernel reports for `pid`'s thread `tid` (field `Cpus_allowed_list`).
    fn allowed_list(pid: u32, tid: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_owned()
    }

    #[test]
    fn the_split_never_gives_the_server_cpu_to_the_client() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        match CpuSplit::plan() {
            Some(split) => {
                assert!(cpus.len() >= 2);
                assert!(!split.client.contains(&split.server));
                assert_eq!(split.client.len() + 1, cpus.len());
                assert!(split.describe().contains(&format!("CPU {}", split.server)));
            }
            None => assert_eq!(cpus.len(), 1),
        }
    }

    #[test]
    fn pinning_a_process_pins_every_thread_of_it() {
        let cpu = *allowed_cpus().unwrap().first().unwrap();
        // A child with more than one thread would be ideal; `sleep` has one, and the
        // check below reads every thread the kernel lists for it.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        pin_process(child.id(), &[cpu]).unwrap();
        for task in std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap() {
            let tid = task.unwrap().file_name().into_string().unwrap();
            assert_eq!(allowed_list(child.id(), &tid), cpu.to_string());
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn an_empty_cpu_list_is_refused() {
        let err = pin_process(std::process::id(), &[]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

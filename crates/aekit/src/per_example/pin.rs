//! Keeping each lock-step worker on one core. The `rows` and `split`
//! workers wait for each other once or twice per example (a few
//! microseconds apart); a worker the scheduler moves to another core loses
//! its cached share of W and holds up all the others. Linux only; elsewhere,
//! or when the process may use fewer CPUs than there are workers, nothing
//! is pinned. `AEKIT_PIN=0` turns it off (to time the difference).
#![allow(unsafe_code)]

/// The CPUs this process may run on, in order (empty when unknown).
#[cfg(target_os = "linux")]
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
pub fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `cpus` (all of them when given several);
/// whether it could.
#[cfg(target_os = "linux")]
pub fn pin_to(cpus: &[usize]) -> bool {
    // SAFETY: as above; sched_setaffinity reads the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        !cpus.is_empty() && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin_to(_: &[usize]) -> bool {
    false
}

/// The CPU for each of `workers` lock-step workers, or `None` when they are
/// not to be pinned (too few CPUs, one worker, or `AEKIT_PIN=0`).
pub fn plan(workers: usize) -> Option<Vec<usize>> {
    if workers < 2 || std::env::var("AEKIT_PIN").is_ok_and(|v| v == "0") {
        return None;
    }
    let cpus = allowed_cpus();
    (cpus.len() >= workers).then(|| cpus[..workers].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_pinned_to_one_allowed_cpu_runs_only_there_and_can_be_freed() {
        let cpus = allowed_cpus();
        if cfg!(not(target_os = "linux")) || cpus.is_empty() {
            eprintln!("skipped: no CPU affinity on this system");
            return;
        }
        let last = *cpus.last().unwrap();
        std::thread::spawn(move || {
            assert!(pin_to(&[last]));
            assert_eq!(allowed_cpus(), vec![last]);
            assert!(pin_to(&cpus));
            assert_eq!(allowed_cpus(), cpus);
        })
        .join()
        .unwrap();
    }
}

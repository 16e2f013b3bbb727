//! The CPU threads a model library computes with, against the CPUs this
//! process may use.
//!
//! candle sizes its thread pools from `CANDLE_NUM_THREADS` (its own pool),
//! else `RAYON_NUM_THREADS`, else the machine's physical cores — not a
//! container's CPU limit. In a pod limited to 2 CPUs on a 64-core node it
//! would run 64 threads that the kernel then throttles in turn. The
//! Kubernetes manifests and the compose file set both variables to the CPU
//! limit; [`report_compute_threads`] makes a mismatch visible at start-up.

/// A positive thread count from the environment variable `name`, read as
/// candle reads it: unset, empty, zero or not a number mean "not set".
pub fn threads_from_env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| parse_threads(&v))
}

fn parse_threads(value: &str) -> Option<usize> {
    value.trim().parse::<usize>().ok().filter(|&n| n > 0)
}

/// The CPUs this process may use: `std::thread::available_parallelism`,
/// which follows the cgroup CPU quota (a container's CPU limit) and the
/// affinity mask.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Logs `threads`, the count `library` computes with, and warns when it is
/// more than [`available_cpus`]: more busy threads than CPUs are throttled
/// by the kernel and slow every task down.
pub fn report_compute_threads(library: &str, threads: usize) {
    let cpus = available_cpus();
    if threads > cpus {
        tracing::warn!(
            library,
            threads,
            cpus,
            "more compute threads than CPUs: the kernel will throttle them; \
             set CANDLE_NUM_THREADS and RAYON_NUM_THREADS to the CPU limit"
        );
    } else {
        tracing::info!(library, threads, cpus, "compute threads");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_parse_like_candle() {
        assert_eq!(parse_threads("4"), Some(4));
        assert_eq!(parse_threads(" 2 "), Some(2));
        for not_set in ["", "0", "-1", "two", "1.5"] {
            assert_eq!(parse_threads(not_set), None, "{not_set:?}");
        }
    }
}

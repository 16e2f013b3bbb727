//! Running a batch's forward passes side by side, one per CPU thread.
//!
//! One forward pass spread over all threads (candle's products and the
//! kernels split each operation) makes the threads meet after every
//! operation, some sixty times a pass, and cuts each product into pieces
//! too small to run at full speed. When a batch makes several passes, it
//! is faster to give each thread whole passes of its own: a lane is a
//! one-thread rayon pool, so everything a pass runs stays on that thread.
//! A lone pass (one text, or a batch that fits one pass) still uses every
//! thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::EmbeddingError;

/// One single-thread pool per CPU thread.
pub(super) struct Lanes {
    pools: Vec<rayon::ThreadPool>,
}

impl Lanes {
    /// As many lanes as rayon's global pool has threads (`RAYON_NUM_THREADS`
    /// or the CPUs), none when that is one.
    pub(super) fn new() -> Result<Self, EmbeddingError> {
        let count = match rayon::current_num_threads() {
            1 => 0,
            threads => threads,
        };
        let pools = (0..count)
            .map(|lane| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("embedding-lane-{lane}"))
                    .build()
                    .map_err(EmbeddingError::Threads)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { pools })
    }

    /// How many jobs can run at once: the lanes, or one without them.
    pub(super) fn count(&self) -> usize {
        self.pools.len().max(1)
    }

    /// Runs `job(0)` … `job(jobs - 1)` and returns their results in that
    /// order. With several jobs and lanes, each lane takes the next job
    /// until none is left; otherwise they run one after the other on a
    /// thread of rayon's global pool, every thread helping with each
    /// operation. After a failure no new job starts, and the first error
    /// is returned.
    pub(super) fn run<T: Send>(
        &self,
        jobs: usize,
        job: impl Fn(usize) -> Result<T, EmbeddingError> + Sync,
    ) -> Result<Vec<T>, EmbeddingError> {
        if jobs < 2 || self.pools.len() < 2 {
            // On a worker of the global pool, so that the operations'
            // parallel parts start from inside it: the calling thread would
            // otherwise sleep and be woken once per operation.
            let job = &job;
            return rayon::scope(|_| (0..jobs).map(job).collect());
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let lane = || -> Result<Vec<(usize, T)>, EmbeddingError> {
            let mut done = Vec::new();
            while !failed.load(Ordering::Relaxed) {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= jobs {
                    break;
                }
                match job(index) {
                    Ok(result) => done.push((index, result)),
                    Err(error) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(error);
                    }
                }
            }
            Ok(done)
        };
        let finished: Vec<_> = std::thread::scope(|scope| {
            let others: Vec<_> = self.pools[1..]
                .iter()
                .map(|pool| scope.spawn(|| pool.install(lane)))
                .collect();
            let mine = self.pools[0].install(lane);
            std::iter::once(mine)
                .chain(others.into_iter().map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                }))
                .collect()
        });
        let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(jobs).collect();
        for done in finished {
            for (index, result) in done? {
                results[index] = Some(result);
            }
        }
        Ok(results.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(count: usize) -> Lanes {
        let pools = (0..count)
            .map(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|err| panic!("thread pool: {err}"));
        Lanes { pools }
    }

    #[test]
    fn results_come_back_in_job_order() {
        for count in [0, 1, 2, 3] {
            let squares = lanes(count).run(10, |i| Ok(i * i));
            let expected: Vec<usize> = (0..10).map(|i| i * i).collect();
            assert_eq!(squares.ok(), Some(expected), "{count} lanes");
        }
    }

    #[test]
    fn jobs_see_a_one_thread_pool() {
        let pools = lanes(2)
            .run(8, |_| Ok(rayon::current_num_threads()))
            .unwrap_or_default();
        assert_eq!(pools, [1; 8]);
    }

    #[test]
    fn a_failure_is_returned_and_stops_new_jobs() {
        let started = AtomicUsize::new(0);
        let result = lanes(2).run(1_000, |i| {
            started.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(1));
            match i {
                3 => Err(candle_core::Error::Msg("job 3 failed".into()).into()),
                _ => Ok(i),
            }
        });
        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("job 3 failed"), "{error}");
        assert!(started.load(Ordering::Relaxed) < 1_000);
    }
}

//! The trainer's parallelism: one thread per core, each running candle single-threaded.
//!
//! candle's CPU kernels that parallelise with rayon (convolutions among them) would queue the
//! work of every worker on one global pool; each worker therefore runs inside a rayon pool of
//! its own with one thread, where those kernels run inline.

/// Runs `job(w)` for `w` in `0..workers`, each on its own thread; results in worker order.
pub fn run_workers<R: Send>(workers: usize, job: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let workers = workers.max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let job = &job;
                scope.spawn(move || {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .thread_name(move |_| format!("t2v-train-worker-{w}"))
                        .build()
                        .expect("a one-thread pool");
                    pool.install(|| job(w))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("training worker panicked"))
            .collect()
    })
}

/// `f` of every item on `workers` threads (items `w`, `w + workers`, ... on worker `w`); results
/// in item order.
pub fn map_items<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.clamp(1, items.len().max(1));
    let per_worker = run_workers(workers, |w| {
        items
            .iter()
            .skip(w)
            .step_by(workers)
            .map(&f)
            .collect::<Vec<R>>()
    });
    let mut iters: Vec<_> = per_worker.into_iter().map(Vec::into_iter).collect();
    (0..items.len())
        .map(|i| iters[i % workers].next().expect("one result per item"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order_and_run_on_separate_threads() {
        let items: Vec<usize> = (0..7).collect();
        assert_eq!(
            map_items(&items, 3, |&i| i * 10),
            vec![0, 10, 20, 30, 40, 50, 60]
        );
        let names = run_workers(2, |_| std::thread::current().name().map(str::to_string));
        assert_eq!(
            names,
            vec![
                Some("t2v-train-worker-0".into()),
                Some("t2v-train-worker-1".into())
            ]
        );
    }
}

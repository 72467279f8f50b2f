//! End-to-end suite: starts `wrangler dev` (workerd with local D1 + KV) and
//! the Spin host, runs the same cases against each, then stops them. The
//! database assertions read the runtimes' own SQLite files.
//!
//! Needs the release builds (`make test-e2e` makes them): functions built
//! with tools/build-worker.sh and for wasm32-wasip2, and `target/host/spin-host`.

mod aggregates;
mod badinput;
mod capture_look;
mod cases;
mod dashboard;
mod email;
mod hooks_in;
mod hooks_out;
mod jobs;
mod link_editor;
mod link_page;
mod links;
mod overview;
mod pages;
mod privacy;
mod runtime;
mod soak;
mod workspace;

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use libtest_mimic::{Arguments, Failed, Trial};

use runtime::Target;

fn main() {
    let mut args = Arguments::from_args();
    // Cases share one server per runtime and some count rows, so each
    // runtime's cases run one at a time, in order (`Turns`); the two
    // runtimes are independent and run side by side on two threads.
    // `--test-threads 1` runs everything one after the other.
    if args.test_threads.is_none_or(|n| n > 2) {
        args.test_threads = Some(2);
    }

    let (workers, spin) = std::thread::scope(|s| {
        let w = s.spawn(runtime::start_workers);
        let p = s.spawn(runtime::start_spin);
        (w.join().expect("workers start thread"), p.join().expect("spin start thread"))
    });

    let mut per_runtime = Vec::new();
    for (name, started) in [("workers", &workers), ("spin", &spin)] {
        let target = started.as_ref().map(|(_, t)| Arc::clone(t)).map_err(Clone::clone);
        let turns = Arc::new(Turns::default());
        let mut trials = Vec::new();
        let all = cases::ALL
            .iter()
            .chain(email::ALL)
            .chain(links::ALL)
            .chain(link_page::ALL)
            .chain(dashboard::ALL)
            .chain(soak::ALL)
            .chain(badinput::ALL)
            .chain(jobs::ALL)
            .chain(hooks_in::ALL)
            .chain(hooks_out::ALL)
            .chain(privacy::ALL)
            .chain(workspace::ALL)
            .chain(pages::ALL)
            .chain(overview::ALL)
            .chain(aggregates::ALL)
            .chain(link_editor::ALL)
            .chain(capture_look::ALL)
            .chain(cases::FINAL);
        for &(case, f) in all {
            let name = format!("{name}::{case}");
            // Tickets go to the cases that will run, so a filter never
            // leaves one waiting for a case that was filtered out.
            if args.is_filtered_out(&Trial::test(name.clone(), || Ok(()))) {
                continue;
            }
            let (target, turns, ticket) = (target.clone(), Arc::clone(&turns), trials.len());
            let name_for_timing = name.clone();
            trials.push(Trial::test(name, move || {
                let _turn = turns.wait(ticket);
                let started = std::time::Instant::now();
                let result = match &target {
                    Ok(t) => f(t).map_err(Failed::from),
                    Err(e) => Err(Failed::from(format!("runtime did not start: {e}"))),
                };
                // The suite's length is the slower runtime's sum of cases:
                // the slow ones are named, to know where it goes.
                let took = started.elapsed();
                if took >= SLOW {
                    eprintln!("slow case: {name_for_timing} took {:.1} s", took.as_secs_f64());
                }
                result
            }));
        }
        per_runtime.push(trials.into_iter());
    }
    // Queued interleaved (workers::a, spin::a, workers::b, …): libtest-mimic
    // starts trials in queue order, so the runtimes overlap from the start.
    let mut trials = Vec::new();
    while per_runtime.iter().any(|t| t.len() > 0) {
        trials.extend(per_runtime.iter_mut().filter_map(Iterator::next));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop((workers, spin)); // stops the servers
    conclusion.exit();
}

/// Cases that take this long are named on stderr as they end.
const SLOW: std::time::Duration = std::time::Duration::from_secs(3);

/// One runtime's cases in queue order: ticket `n` runs once `n - 1` has
/// finished, however the thread pool happens to pick them up.
#[derive(Default)]
struct Turns {
    next: Mutex<usize>,
    done: Condvar,
}

struct Turn<'a>(&'a Turns);

impl Turns {
    fn wait(&self, ticket: usize) -> Turn<'_> {
        // A case that panicked poisons nothing the counter relies on.
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        while *next != ticket {
            next = self.done.wait(next).unwrap_or_else(PoisonError::into_inner);
        }
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    /// Passes the turn on even when the case panicked.
    fn drop(&mut self) {
        *self.0.next.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.done.notify_all();
    }
}

pub type Started = Result<(runtime::Server, Arc<Target>), String>;

//! End-to-end suite: starts `wrangler dev` (workerd with local D1 + KV) and
//! the Spin host, runs the same cases against each, then stops them. The
//! database assertions read the runtimes' own SQLite files.
//!
//! Needs the release builds (`make test-e2e` makes them): functions built
//! with tools/build-worker.sh and for wasm32-wasip2, and `target/host/spin-host`.

mod badinput;
mod cases;
mod dashboard;
mod email;
mod hooks_in;
mod hooks_out;
mod jobs;
mod links;
mod privacy;
mod runtime;
mod soak;
mod workspace;

use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use runtime::Target;

fn main() {
    let mut args = Arguments::from_args();
    // Cases share one server per runtime and some count rows: run in order.
    args.test_threads = Some(1);

    let (workers, spin) = std::thread::scope(|s| {
        let w = s.spawn(runtime::start_workers);
        let p = s.spawn(runtime::start_spin);
        (w.join().expect("workers start thread"), p.join().expect("spin start thread"))
    });

    let mut trials = Vec::new();
    for (name, started) in [("workers", &workers), ("spin", &spin)] {
        let target = started.as_ref().map(|(_, t)| Arc::clone(t)).map_err(Clone::clone);
        let all = cases::ALL
            .iter()
            .chain(email::ALL)
            .chain(links::ALL)
            .chain(dashboard::ALL)
            .chain(soak::ALL)
            .chain(badinput::ALL)
            .chain(jobs::ALL)
            .chain(hooks_in::ALL)
            .chain(hooks_out::ALL)
            .chain(privacy::ALL)
            .chain(workspace::ALL)
            .chain(cases::FINAL);
        for &(case, f) in all {
            let target = target.clone();
            trials.push(Trial::test(format!("{name}::{case}"), move || match &target {
                Ok(t) => f(t).map_err(Failed::from),
                Err(e) => Err(Failed::from(format!("{name} runtime did not start: {e}"))),
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop((workers, spin)); // stops the servers
    conclusion.exit();
}

pub type Started = Result<(runtime::Server, Arc<Target>), String>;

//! `ringtail-sim`: runs seeds of the deterministic simulator. Use it through
//! `sim/run`, which builds it with `RUSTFLAGS="--cfg madsim"`.
//!
//! ```text
//! ringtail-sim [--seeds N] [--first-seed S] [--jobs J] [--safety-ms MS] [--check-determinism]
//! ringtail-sim --seed S [--trace] [--safety-ms MS] [--check-determinism]
//! ringtail-sim --canary NAME ...   (built with --features canaries: one planted bug on)
//! ```
//! Exit codes: 0 every seed passed; 1 a violation (or nondeterminism);
//! 2 bad usage.

#[cfg(not(madsim))]
fn main() {
    eprintln!("ringtail-sim must be built with RUSTFLAGS=\"--cfg madsim\": run it through sim/run");
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    let code = sim_main::main(std::env::args().skip(1).collect());
    std::process::exit(code);
}

#[cfg(madsim)]
mod sim_main {
    use ringtail_sim::checker::{Invariant, Violation};
    use ringtail_sim::report::{self, SeedResult};
    use ringtail_sim::run::{run_current_seed, RunOptions, Scenario};
    use std::collections::BTreeMap;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc, Mutex, OnceLock};
    use std::time::Instant;

    /// Simulated milliseconds of the safety phase unless `--safety-ms`.
    const SAFETY_MS_DEFAULT: u64 = 20_000;
    /// A seed normally takes well under a wall second. One still running
    /// after this long spins without advancing simulated time (a loop that
    /// never yields to a timer): a livelock, reported as a failure.
    const HANG_WALL_S: u64 = 120;

    /// Read by every seed's future: `check_determinism` takes a plain `fn`.
    static OPTIONS: OnceLock<RunOptions> = OnceLock::new();

    struct Args {
        first_seed: u64,
        seeds: u64,
        single: bool,
        jobs: usize,
        check_determinism: bool,
        /// Stop at the lowest failing seed (the canaries' search).
        fail_fast: bool,
        /// The planted bug to switch on (`--canary NAME`).
        canary: Option<ringtail_engine::canary::Canary>,
        options: RunOptions,
    }

    const USAGE: &str = "usage: ringtail-sim [--seeds N] [--first-seed S] [--jobs J] [--safety-ms MS] [--check-determinism] [--fail-fast] [--scenario broker|quorum|replication] [--canary NAME]\n       ringtail-sim --seed S [--trace] [--safety-ms MS] [--check-determinism] [--scenario broker|quorum|replication]";

    fn parse(args: Vec<String>) -> Result<Args, String> {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut a = Args {
            first_seed: 1,
            seeds: 200,
            single: false,
            jobs,
            check_determinism: std::env::var_os("MADSIM_TEST_CHECK_DETERMINISM").is_some(),
            fail_fast: false,
            canary: None,
            options: RunOptions { safety_ms: SAFETY_MS_DEFAULT, trace: false, scenario: Scenario::Broker },
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                let v = it.next().ok_or(format!("{name} needs a value"))?;
                v.parse().map_err(|_| format!("{name}: {v:?} is not a number"))
            };
            match flag.as_str() {
                "--seeds" => a.seeds = value("--seeds")?,
                "--first-seed" => a.first_seed = value("--first-seed")?,
                "--seed" => {
                    a.first_seed = value("--seed")?;
                    a.seeds = 1;
                    a.single = true;
                }
                "--jobs" => a.jobs = value("--jobs")?.max(1) as usize,
                "--safety-ms" => a.options.safety_ms = value("--safety-ms")?,
                "--trace" => a.options.trace = true,
                "--scenario" => {
                    a.options.scenario = match it.next().as_deref() {
                        Some("broker") => Scenario::Broker,
                        Some("quorum") => Scenario::Quorum,
                        Some("replication") => Scenario::Replication,
                        other => {
                            return Err(format!("--scenario: broker, quorum or replication, not {other:?}"))
                        }
                    }
                }
                "--check-determinism" => a.check_determinism = true,
                "--fail-fast" => a.fail_fast = true,
                "--canary" => {
                    use ringtail_engine::canary::Canary;
                    let name = it.next().unwrap_or_default();
                    if !Canary::COMPILED {
                        return Err("--canary needs a build with --features canaries (sim/canaries)".into());
                    }
                    let canary = Canary::from_name(&name).ok_or(format!("--canary: no canary {name:?}"))?;
                    a.canary = Some(canary);
                }
                "--features" => return Err(FEATURES_QUERY.into()),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if a.options.trace && !a.single {
            return Err("--trace needs --seed S".into());
        }
        Ok(a)
    }

    /// `--features`: the cargo features this binary was built with
    /// (`canaries` or nothing), so the scripts can check they run the
    /// binary they mean to.
    const FEATURES_QUERY: &str = "\u{0}features";

    fn compiled_features() -> Vec<&'static str> {
        if ringtail_engine::canary::Canary::COMPILED {
            vec!["canaries"]
        } else {
            Vec::new()
        }
    }

    pub fn main(args: Vec<String>) -> i32 {
        let args = match parse(args) {
            Ok(a) => a,
            Err(e) if e == FEATURES_QUERY => {
                for name in compiled_features() {
                    println!("{name}");
                }
                return 0;
            }
            Err(e) => {
                if !e.is_empty() {
                    eprintln!("ringtail-sim: {e}");
                }
                eprintln!("{USAGE}");
                return 2;
            }
        };
        OPTIONS.set(args.options).expect("options are set once");
        #[cfg(feature = "canaries")]
        if let Some(canary) = args.canary {
            canary.activate();
        }
        #[cfg(not(feature = "canaries"))]
        let _ = args.canary;
        if args.options.trace {
            // The engine's warnings and errors, interleaved with the trace.
            // RINGTAIL_SIM_LOG=info|debug shows more of the engine's log.
            let level = std::env::var("RINGTAIL_SIM_LOG")
                .ok()
                .and_then(|l| l.parse().ok())
                .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
            tracing_subscriber::fmt()
                .with_max_level(level)
                .without_time()
                .with_ansi(false)
                .with_target(false)
                .with_writer(std::io::stdout)
                .init();
        }
        if args.single {
            let running: Running = Default::default();
            running.lock().unwrap_or_else(|e| e.into_inner()).insert(args.first_seed, Instant::now());
            watchdog(running);
            let r = run_one(args.first_seed, args.check_determinism);
            println!("{}", report::seed_line(&r));
            if let Some(v) = &r.violation {
                print!("{}", report::violation_report(r.seed, v));
                return 1;
            }
            return 0;
        }
        run_suite(&args)
    }

    fn seed_future() -> std::pin::Pin<Box<dyn std::future::Future<Output = SeedResult>>> {
        let options = *OPTIONS.get().expect("options set");
        match options.scenario {
            Scenario::Broker => Box::pin(run_current_seed(options)),
            Scenario::Quorum => Box::pin(ringtail_sim::quorum::run_quorum_seed(options)),
            Scenario::Replication => Box::pin(ringtail_sim::replication::run_replication_seed(options)),
        }
    }

    fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    }

    /// A seed whose run panicked: an engine assertion or a harness bug,
    /// reported like any violation.
    fn panicked(seed: u64, message: String) -> SeedResult {
        SeedResult {
            seed,
            sim_ms: 0,
            wall_ms: 0,
            ops: Default::default(),
            faults: Default::default(),
            checks: 0,
            hash: 0,
            classes: String::new(),
            flush: String::new(),
            beyond_budget: false,
            outcomes: Default::default(),
            violation: Some(Violation {
                invariant: Invariant::Recovery,
                tp: None,
                offset: None,
                at_ms: 0,
                detail: format!("the run panicked: {message}"),
                slice: Vec::new(),
            }),
        }
    }

    /// Runs one seed in a fresh runtime; with `check_determinism`, runs it
    /// again under madsim's determinism checker and compares the outcomes.
    fn run_one(seed: u64, check_determinism: bool) -> SeedResult {
        let started = Instant::now();
        // On a thread of its own: thread-locals (std's hash keys, rand's
        // thread RNG in dependencies) are first drawn inside the runtime,
        // from the seed, instead of carried over from the seed the worker
        // ran before. madsim's determinism check does the same.
        let outcome = std::thread::scope(|scope| {
            let run = scope.spawn(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
                    rt.block_on(seed_future())
                }))
            });
            run.join().unwrap_or_else(Err)
        });
        let mut result = match outcome {
            Ok(r) => r,
            Err(p) => panicked(seed, panic_message(p.as_ref())),
        };
        result.wall_ms = started.elapsed().as_millis() as u64;
        if check_determinism && result.passed() {
            let again = catch_unwind(AssertUnwindSafe(|| {
                madsim::runtime::Runtime::check_determinism(seed, madsim::Config::default(), seed_future)
            }));
            let differs = match again {
                Err(p) => Some(format!("madsim's determinism check failed: {}", panic_message(p.as_ref()))),
                Ok(r)
                    if (r.hash, r.sim_ms, r.checks, &r.ops)
                        != (result.hash, result.sim_ms, result.checks, &result.ops) =>
                {
                    Some(format!(
                        "a second run differs: hash {:016x} vs {:016x}, sim_ms {} vs {}, checks {} vs {}",
                        r.hash, result.hash, r.sim_ms, result.sim_ms, r.checks, result.checks
                    ))
                }
                Ok(_) => None,
            };
            if let Some(detail) = differs {
                result.violation = Some(Violation {
                    invariant: Invariant::Recovery,
                    tp: None,
                    offset: None,
                    at_ms: 0,
                    detail: format!("NONDETERMINISM: {detail}"),
                    slice: Vec::new(),
                });
            }
        }
        result
    }

    /// Seeds being run now, with their start: the watchdog's view.
    type Running = Arc<Mutex<BTreeMap<u64, Instant>>>;

    /// Ends the process if a seed hangs: a livelock must fail the run, not
    /// stall CI until its own timeout.
    fn watchdog(running: Running) {
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let stuck = running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(_, t)| t.elapsed().as_secs() >= HANG_WALL_S)
                .map(|(seed, _)| *seed);
            if let Some(seed) = stuck {
                println!("seed={seed} FAIL invariant=L hang: no result after {HANG_WALL_S} wall seconds");
                println!("VIOLATION seed={seed} invariant=L (livelock)");
                println!(
                    "  the simulation stopped advancing simulated time: some task loops without waiting"
                );
                println!("  replay: sim/run --seed {seed} --trace   (and attach a debugger to see the loop)");
                std::process::exit(1);
            }
        });
    }

    fn run_suite(args: &Args) -> i32 {
        let started = Instant::now();
        let end = args.first_seed + args.seeds;
        let next = Arc::new(AtomicU64::new(args.first_seed));
        let running: Running = Default::default();
        watchdog(running.clone());
        let (tx, rx) = mpsc::channel();
        // With --fail-fast, seeds above the lowest failure are not started;
        // seeds below it all finish, so the reported seed is the lowest.
        let lowest_failure = Arc::new(AtomicU64::new(u64::MAX));
        let workers: Vec<_> = (0..args.jobs.min(args.seeds.max(1) as usize))
            .map(|_| {
                let (next, tx, check) = (next.clone(), tx.clone(), args.check_determinism);
                let (running, lowest, fail_fast) = (running.clone(), lowest_failure.clone(), args.fail_fast);
                std::thread::spawn(move || loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end || (fail_fast && seed > lowest.load(Ordering::SeqCst)) {
                        break;
                    }
                    running.lock().unwrap_or_else(|e| e.into_inner()).insert(seed, Instant::now());
                    let result = run_one(seed, check);
                    running.lock().unwrap_or_else(|e| e.into_inner()).remove(&seed);
                    if !result.passed() {
                        lowest.fetch_min(seed, Ordering::SeqCst);
                    }
                    if tx.send(result).is_err() {
                        break;
                    }
                })
            })
            .collect();
        drop(tx);
        let mut results = Vec::new();
        for r in rx {
            println!("{}", report::seed_line(&r));
            if let Some(v) = &r.violation {
                print!("{}", report::violation_report(r.seed, v));
            }
            results.push(r);
        }
        for w in workers {
            let _ = w.join();
        }
        results.sort_by_key(|r| r.seed);
        let elapsed = started.elapsed().as_millis() as u64;
        print!("{}", report::summary(&results, elapsed, args.jobs));
        if results.iter().all(SeedResult::passed) {
            0
        } else {
            1
        }
    }
}

//! Starting and stopping a server: `ringtail serve` in the binary, and
//! `start` for tests that run a server in-process on an ephemeral port.
//!
//! Start: storage backend, listeners (so a taken port fails before a long
//! recovery), the broker (recovering every log), then the tasks: accept
//! loop, metrics endpoint, maintenance, the group coordinator's timers.
//! Stop: stop accepting and reading, stop the group timers and unload the
//! groups (answering parked JoinGroup/SyncGroup requests), let in-flight
//! requests finish (bounded), stop maintenance, close the broker (sync,
//! checkpoints, files closed).

use crate::clock::SystemClock;
use crate::cluster;
use crate::config::listeners::DEFAULT_LISTENER_NAME;
use crate::config::{HostPort, ServeConfig};
use crate::entropy::os_seed;
use crate::handlers::listener_address::Route;
use crate::handlers::{Context, RequestObserver};
use crate::maintenance;
use crate::metered_disk::{MeteredDisk, ServerBroker};
use crate::metrics::{self, Metrics};
use crate::net::body_pool::{BodyPool, POOL_FREE_BYTES_MAX};
use crate::net::connection::Shared;
use crate::net::listener::{accept_loop, Admission, Listener};
use crate::net::tls::ListenerTls;
use crate::net::tracker::TaskTracker;
use ringtail_engine::broker::{Broker, BrokerConfig, BrokerEndpoint};
use ringtail_engine::clock::Clock;
use ringtail_engine::controller::Endpoint;
use ringtail_engine::entropy::SeededEntropy;
use ringtail_engine::io::{open_backend, AnyDisk, IoChoice};
use ringtail_engine::log::{LogError, OpenError, RecoveryProgress};
use ringtail_engine::watch;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a cluster member waits for the controller to move its
/// leaderships before it stops anyway.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a server could not start or stop cleanly. All are runtime failures
/// (exit code 1); bad configuration is caught before, by `config::resolve`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid limits: {0}")]
    Limits(String),
    #[error("storage I/O backend: {0}")]
    Backend(io::Error),
    #[error("cannot listen for {what} on {address}: {source}")]
    Bind { what: &'static str, address: String, source: io::Error },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("reading OS randomness: {0}")]
    Entropy(io::Error),
    #[error("installing signal handlers: {0}")]
    Signals(io::Error),
    #[error("closing the broker: {0}")]
    Close(LogError),
    #[error("interrupted again during shutdown; exiting without closing the broker")]
    Interrupted,
    #[error("server task failed: {0}")]
    Task(String),
    #[error("metadata quorum: {0}")]
    Quorum(String),
    #[error("listener {listener}: {key}: {problem}")]
    Tls { listener: String, key: &'static str, problem: String },
    #[error(
        "{0}; a cluster member stops so that its restart recovers the log while the controller moves \
         its leaderships to in-sync replicas (Kafka halts on a failed log directory too)"
    )]
    LogFailed(String),
}

impl ServeError {
    /// Runtime failure (INTERFACE.md).
    pub const EXIT_CODE: u8 = 1;
}

/// A listener beyond the default one, as bound.
pub struct ListenerAddress {
    pub name: String,
    pub addr: SocketAddr,
    listener: Arc<Listener>,
}

/// A started server. Dropping it does not stop it: call `shutdown`.
pub struct RunningServer {
    pub kafka_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The address given to clients in Metadata.
    pub advertised: HostPort,
    pub node_id: i32,
    pub io_backend: &'static str,
    pub data_dir: PathBuf,
    /// The listeners beyond the default one, in config order.
    pub listeners: Vec<ListenerAddress>,
    shutdown: Arc<watch::Sender<bool>>,
    stopped: JoinHandle<Result<(), ServeError>>,
    broker: Arc<ServerBroker>,
}

impl RunningServer {
    /// The broker it serves (the simulator inspects its logs).
    pub fn broker(&self) -> &Arc<ServerBroker> {
        &self.broker
    }

    /// The line logged when the server takes clients.
    pub fn ready_line(&self) -> String {
        let others: String = self
            .listeners
            .iter()
            .map(|l| {
                let protocol = match (l.listener.tls.is_some(), l.listener.sasl.is_empty()) {
                    (false, true) => "PLAINTEXT",
                    (true, true) => "SSL",
                    (false, false) => "SASL_PLAINTEXT",
                    (true, false) => "SASL_SSL",
                };
                format!(", listener {} ({protocol}) on {}", l.name, l.addr)
            })
            .collect();
        format!(
            "ringtail ready: kafka on {}{others}, metrics on {}, node {}, io {}, data {}",
            self.kafka_addr,
            self.metrics_addr,
            self.node_id,
            self.io_backend,
            self.data_dir.display()
        )
    }

    /// Reads every SSL listener's certificate and key files again (SIGHUP):
    /// new connections use them; a listener whose files fail keeps its old
    /// ones, and the failure is logged.
    pub fn reload_tls(&self) {
        for l in &self.listeners {
            let Some(tls) = &l.listener.tls else { continue };
            match tls.reload() {
                Ok(()) => tracing::info!(listener = l.name, "TLS certificate reloaded"),
                Err(e) => tracing::error!(
                    listener = l.name,
                    key = e.field,
                    problem = e.problem,
                    "TLS certificate not reloaded; keeping the old one"
                ),
            }
        }
    }

    /// Resolves when the server began to stop by itself (a cluster member
    /// that cannot go on: see `cluster::Membership::failed`).
    pub async fn stopping(&self) {
        let mut signal = self.shutdown.subscribe();
        crate::shutdown::signalled(&mut signal).await;
    }

    /// Stops taking requests, finishes those in flight (for at most
    /// `Limits::shutdown_drain_ms_max`), closes the broker.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.shutdown.send(true);
        self.stopped.await.map_err(|e| ServeError::Task(e.to_string()))?
    }
}

/// What a server runs on: its storage backend, its clock, and the seed of
/// its randomness. `ringtail serve` takes the host's; the simulator hands
/// each simulated node its faulty disk, simulated clock and a seed.
pub struct Platform {
    pub disk: AnyDisk,
    pub clock: Arc<dyn Clock>,
    pub seed: u64,
    /// The simulator's view of each request (handlers::RequestObserver).
    pub observer: Option<Arc<dyn RequestObserver>>,
}

impl Platform {
    /// This host's: the `--io` backend, the system clock, OS randomness.
    pub fn host(io: IoChoice) -> Result<Platform, ServeError> {
        Ok(Platform {
            disk: open_backend(io).map_err(ServeError::Backend)?,
            clock: Arc::new(SystemClock),
            seed: os_seed().map_err(ServeError::Entropy)?,
            observer: None,
        })
    }
}

/// Reaps the io_uring backend's completions on this runtime (io_reaper.rs);
/// if that cannot start, its driver thread reaps them, a little slower.
#[cfg(not(madsim))]
fn reap_on_this_runtime(backend: &AnyDisk) -> Option<crate::io_reaper::Reaping> {
    #[cfg(target_os = "linux")]
    if let Some(reaper) = backend.completion_reaper() {
        return crate::io_reaper::spawn(reaper)
            .inspect_err(|e| tracing::warn!(error = %e, "io_uring completions left to the driver thread"))
            .ok();
    }
    let _ = backend;
    None
}

/// The simulator has no io_uring: nothing to reap.
#[cfg(madsim)]
fn reap_on_this_runtime(_: &AnyDisk) -> Option<NoReaping> {
    None
}

#[cfg(madsim)]
struct NoReaping;

/// Starts a server on this host and returns once it takes clients.
pub async fn start(config: ServeConfig) -> Result<RunningServer, ServeError> {
    config.limits.validate().map_err(ServeError::Limits)?;
    let platform = Platform::host(config.io)?;
    start_on(config, platform).await
}

/// Starts a server on `platform` and returns once it takes clients.
pub async fn start_on(config: ServeConfig, platform: Platform) -> Result<RunningServer, ServeError> {
    config.limits.validate().map_err(ServeError::Limits)?;
    let Platform { disk: backend, clock, seed, observer } = platform;
    let reaping = reap_on_this_runtime(&backend);
    let metrics = Metrics::new(backend.name());
    metrics
        .partition_series_max
        .store(config.limits.metrics_partition_series_max, std::sync::atomic::Ordering::Relaxed);
    let disk = MeteredDisk::new(backend, metrics.clone());
    let kafka_listener = bind("Kafka", &config.listen).await?;
    let metrics_listener = bind("metrics", &config.metrics_listen).await?;
    let kafka_addr = local_addr("Kafka", &config.listen, &kafka_listener)?;
    let metrics_addr = local_addr("metrics", &config.metrics_listen, &metrics_listener)?;
    let principal_mapping = Arc::new(config.ssl_principal_mapping_rules.clone());
    let mut extra_listeners = Vec::new();
    for l in &config.listeners {
        let socket = bind("Kafka", &l.address).await?;
        let addr = local_addr("Kafka", &l.address, &socket)?;
        let tls = l.tls.clone().map(ListenerTls::load).transpose().map_err(|e| ServeError::Tls {
            listener: l.name.clone(),
            key: e.field,
            problem: e.problem,
        })?;
        let advertised = l
            .advertise
            .clone()
            .unwrap_or_else(|| HostPort { host: l.address.host.clone(), port: addr.port() });
        let info = Listener {
            name: l.name.clone(),
            route: Some(Arc::new(Route { name: l.name.clone(), advertised })),
            tls,
            sasl: l.sasl_mechanisms.clone(),
            sasl_session_lifetime: config.sasl_session_lifetime,
            principal_mapping: principal_mapping.clone(),
        };
        extra_listeners.push((socket, addr, Arc::new(info)));
    }
    let advertised = config
        .advertise
        .clone()
        .unwrap_or_else(|| HostPort { host: config.listen.host.clone(), port: kafka_addr.port() });
    let entropy = Arc::new(SeededEntropy::new(seed));
    let broker = open_broker(&config, disk.clone(), &advertised, clock.clone(), entropy.clone()).await?;
    let broker = Arc::new(broker);
    let served_broker = broker.clone();
    let membership = match config.controllers.is_empty() {
        true => None,
        false => {
            // The default listener first: brokers name each other by it.
            let mut endpoints = vec![Endpoint {
                name: DEFAULT_LISTENER_NAME.into(),
                host: advertised.host.clone(),
                port: advertised.port,
            }];
            for (_, _, listener) in &extra_listeners {
                let Some(route) = &listener.route else { continue };
                let a = &route.advertised;
                endpoints.push(Endpoint { name: route.name.clone(), host: a.host.clone(), port: a.port });
            }
            Some(cluster::join(&config, broker.clone(), disk.clone(), endpoints, entropy).await?)
        }
    };

    let (shutdown_tx, shutdown) = watch::channel(false);
    let shutdown_tx = Arc::new(shutdown_tx);
    let stop_self = shutdown_tx.clone();
    let disk_guard = Arc::new(crate::disk_space::DiskGuard::new(
        &config.data_dir,
        config.disk_min_free_bytes,
        config.disk_reserve_bytes,
    ));
    let ctx = Arc::new(Context {
        broker: broker.clone(),
        disk_guard: disk_guard.clone(),
        fetch_sessions: Default::default(),
        metrics: metrics.clone(),
        limits: config.limits,
        shutdown: shutdown.clone(),
        observer,
        authorizer: crate::security::authorize::authorizer(config.authorizer, &config.super_users),
        quotas: Default::default(),
    });
    let request_bytes = crate::net::budget::RequestBudget::new(config.limits.request_bytes_in_flight_max);
    let shared = Arc::new(Shared {
        ctx,
        request_bytes: request_bytes.clone(),
        bodies: BodyPool::new(POOL_FREE_BYTES_MAX),
        admission: Admission::new(config.limits.connections_max),
    });
    let tracker = TaskTracker::default();
    let default_listener = Arc::new(Listener {
        name: DEFAULT_LISTENER_NAME.into(),
        route: None,
        tls: None,
        sasl: Vec::new(),
        sasl_session_lifetime: None,
        principal_mapping,
    });
    let mut accepting = vec![tokio::spawn(accept_loop(
        kafka_listener,
        default_listener,
        shared.clone(),
        shutdown.clone(),
        tracker.token(),
    ))];
    let mut listeners = Vec::new();
    for (socket, addr, info) in extra_listeners {
        listeners.push(ListenerAddress { name: info.name.clone(), addr, listener: info.clone() });
        accepting.push(tokio::spawn(accept_loop(
            socket,
            info,
            shared.clone(),
            shutdown.clone(),
            tracker.token(),
        )));
    }
    let render: metrics::http::Render = {
        let (broker, metrics, disk) = (broker.clone(), metrics.clone(), disk.clone());
        let data_dir = config.data_dir.clone();
        Arc::new(move || {
            let sampled = metrics::Sampled {
                io_counters: disk.io_counters(),
                free_bytes: crate::disk_space::free_bytes(&data_dir),
                request_bytes_held: request_bytes.held(),
            };
            metrics.render(&broker, &sampled)
        })
    };
    let scraping = tokio::spawn(metrics::http::serve(metrics_listener, render, shutdown.clone()));
    let disk_watch = maintenance::DiskWatch {
        data_dir: config.data_dir.clone(),
        warn_below_bytes: config.disk_free_warn_bytes,
        guard: disk_guard,
    };
    let maintaining =
        tokio::spawn(maintenance::run(broker.clone(), config.flush, disk_watch, shutdown.clone()));
    let ticking = tokio::spawn(maintenance::tick_groups(broker.clone(), shutdown.clone()));
    let cleaning = tokio::spawn(maintenance::clean_logs(
        broker.clone(),
        config.cleaner_backoff_ms,
        config.cleaner_io_bytes_per_sec,
        shutdown.clone(),
    ));
    let drain = Duration::from_millis(config.limits.shutdown_drain_ms_max);
    let stopped = tokio::spawn(async move {
        let mut signal = shutdown;
        let mut membership = membership;
        let fatal = tokio::select! {
            biased;
            _ = crate::shutdown::signalled(&mut signal) => None,
            failed = async {
                match &mut membership {
                    Some(m) => m.failed().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::error!(error = %failed, "stopping");
                stop_self.send(true);
                Some(failed)
            }
        };
        // Leaderships move off this broker before the drain: requests it
        // still holds (acks=all waits) end with NOT_LEADER_OR_FOLLOWER, and
        // clients move on. New requests are no longer read by now.
        if let Some(membership) = &membership {
            membership.controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT).await;
        }
        tracing::info!("shutting down: no new connections or requests");
        // The accept loop, connections and long polls see the same signal.
        for accepting in accepting {
            let _ = accepting.await;
        }
        let _ = ticking.await;
        // A cleaning pass under way finishes (its swap is crash-safe, but
        // the logs close after it).
        let _ = cleaning.await;
        // JoinGroup and SyncGroup wait in the coordinator for as long as a
        // rebalance takes: unloading answers them (NOT_COORDINATOR, so
        // clients look for the coordinator again) instead of letting them
        // hold up the drain. Repeated while draining, for any that reached
        // the coordinator after the first unload.
        broker.unload_groups();
        if tokio::time::timeout(drain, drain_requests(&broker, tracker)).await.is_err() {
            tracing::warn!(
                drain_ms = drain.as_millis() as u64,
                "requests still in flight; closing the broker anyway"
            );
        }
        let _ = maintaining.await;
        let _ = scraping.await;
        // The controller fences this broker once its session lapses.
        if let Some(membership) = membership {
            membership.stop();
        }
        let closed = broker.close().await.map_err(ServeError::Close);
        // Nothing of the broker's is in flight now: the reaping may stop.
        #[cfg_attr(madsim, allow(clippy::drop_non_drop))]
        drop(reaping);
        closed?;
        tracing::info!("broker closed");
        fatal.map_or(Ok(()), Err)
    });
    Ok(RunningServer {
        kafka_addr,
        metrics_addr,
        advertised,
        node_id: config.node_id,
        io_backend: disk.backend_name(),
        data_dir: config.data_dir,
        listeners,
        shutdown: shutdown_tx,
        stopped,
        broker: served_broker,
    })
}

/// Waits for the requests in flight, answering any group waiter that
/// arrives meanwhile.
async fn drain_requests(broker: &ServerBroker, tracker: TaskTracker) {
    let mut unloads = tokio::time::interval(Duration::from_millis(maintenance::GROUP_TICK_INTERVAL_MS));
    unloads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let finished = tracker.wait();
    tokio::pin!(finished);
    loop {
        tokio::select! {
        biased;
            _ = &mut finished => return,
            _ = unloads.tick() => broker.unload_groups(),
        }
    }
}

async fn bind(what: &'static str, address: &HostPort) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address.to_string()).await.map_err(|source| ServeError::Bind {
        what,
        address: address.to_string(),
        source,
    })
}

fn local_addr(
    what: &'static str,
    address: &HostPort,
    listener: &TcpListener,
) -> Result<SocketAddr, ServeError> {
    listener.local_addr().map_err(|source| ServeError::Bind { what, address: address.to_string(), source })
}

async fn open_broker(
    config: &ServeConfig,
    disk: MeteredDisk,
    advertised: &HostPort,
    clock: Arc<dyn Clock>,
    entropy: Arc<SeededEntropy>,
) -> Result<ServerBroker, ServeError> {
    let broker_config = BrokerConfig {
        node_id: config.node_id,
        advertised: BrokerEndpoint {
            node_id: config.node_id,
            host: advertised.host.clone(),
            port: i32::from(advertised.port),
        },
        default_partitions: config.default_partitions,
        default_replication_factor: config.default_replication_factor,
        auto_create_topics: config.auto_create_topics,
        topic_defaults: config.topic_defaults,
        group: config.group,
        log_cache_bytes: config.log_cache_bytes,
        quorum: !config.controllers.is_empty(),
        replication: config.replication,
        topic_limits: config.topic_limits,
        cleaner: config.cleaner,
    };
    let progress = Arc::new(RecoveryProgress::new());
    let logging = tokio::spawn(log_recovery_progress(progress.clone()));
    let opened = Broker::open_with_progress(
        Arc::new(disk),
        config.data_dir.clone(),
        broker_config,
        clock,
        entropy,
        &progress,
    )
    .await;
    logging.abort();
    let (broker, reports) = opened?;
    let mut repaired = 0;
    for report in &reports {
        if report.is_clean() {
            tracing::debug!(%report, "recovered log");
        } else {
            repaired += 1;
            tracing::warn!(%report, "recovered log needed repair");
        }
    }
    tracing::info!(logs = reports.len(), repaired, data_dir = %config.data_dir.display(), "broker opened");
    if config.log_cache_pretouch {
        let started = std::time::Instant::now();
        // Before any client is served, so blocking this thread holds up no one.
        let bytes = broker.pretouch_cache();
        tracing::info!(bytes, ms = started.elapsed().as_millis() as u64, "log cache memory pretouched");
    }
    Ok(broker)
}

/// How often a long start-up recovery says how far it has got.
const RECOVERY_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Logs recovery's progress every few seconds until it is aborted. Its own
/// task: with the std backend, recovery blocks the task it runs on.
async fn log_recovery_progress(progress: Arc<RecoveryProgress>) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RECOVERY_PROGRESS_EVERY).await;
        let p = progress.snapshot();
        let seconds_left = p.time_left(started.elapsed()).map(|t| t.as_secs());
        tracing::info!(
            logs_done = p.logs_done,
            logs_total = p.logs_total,
            bytes_done = p.bytes_done,
            bytes_total = p.bytes_total,
            seconds_left,
            "recovering logs"
        );
    }
}

/// `ringtail serve`: starts, logs the readiness line (and hands the server
/// to `on_ready`), then runs until SIGTERM or SIGINT and shuts down. A
/// second signal during shutdown gives up waiting. SIGHUP reloads the SSL
/// listeners' certificates.
#[cfg(not(madsim))]
pub async fn run(config: ServeConfig, on_ready: impl FnOnce(&RunningServer)) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed first, so a signal during a long recovery is not lost.
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;
    // A cluster member waits for its quorum before it is ready: a signal
    // meanwhile ends the wait (nothing is served yet, nothing to drain).
    let server = tokio::select! {
        biased;
        _ = terminate.recv() => return Ok(()),
        _ = interrupt.recv() => return Ok(()),
        server = start(config) => server?,
    };
    tracing::info!("{}", server.ready_line());
    on_ready(&server);
    loop {
        tokio::select! {
            biased;
            _ = terminate.recv() => break tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => break tracing::info!("SIGINT received"),
            _ = hangup.recv() => {
                tracing::info!("SIGHUP received: reloading TLS certificates");
                server.reload_tls();
            }
            _ = server.stopping() => break,
        }
    }
    tokio::select! {
        biased;
        stopped = server.shutdown() => stopped,
        _ = terminate.recv() => Err(ServeError::Interrupted),
        _ = interrupt.recv() => Err(ServeError::Interrupted),
    }
}

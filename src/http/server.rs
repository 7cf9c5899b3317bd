//! The actix-web servers (the public one with its middleware and routes, and the metrics
//! one) and the runtime they run on: the only place that builds an `HttpServer`.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::http;
use crate::http::state::AppState;

/// Serves Prometheus metrics on their own listener (`metrics_bind`, loopback by default),
/// so that they never reach the public one.
pub fn run_metrics(
    listener: TcpListener,
    metrics: Arc<http::observability::Metrics>,
) -> anyhow::Result<Server> {
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new().app_data(metrics.clone()).route(
            http::paths::METRICS,
            web::get().to(http::observability::metrics),
        )
    })
    .workers(1)
    // Signals are the main server's: on SIGTERM actix would also stop the whole system
    // once this server is done, cutting the main server's graceful drain short.
    .disable_signals()
    .listen(listener)?
    .run())
}

/// How long an idle keep-alive connection stays open. Longer than the idle timeout of the
/// proxies in front (nginx's upstream `keepalive_timeout` and AWS's load balancers default
/// to 60 s): a proxy that reuses a connection the server has just closed answers 502 to a
/// POST it may not retry.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);

/// Blocking-pool threads per worker (database calls): the database pool has 16
/// connections, so more threads than that only wait for one, switching the CPU between
/// them and holding memory (actix's default is 512 in all).
fn blocking_threads_per_worker(workers: usize) -> usize {
    (16 / workers.max(1)).max(4)
}

/// Serves `state` on `listener`; the returned server runs until stopped (SIGTERM/SIGINT
/// stop it gracefully: in-flight requests finish first).
pub fn run(
    listener: TcpListener,
    state: AppState,
    workers: Option<usize>,
) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        let hsts = actix_web::middleware::DefaultHeaders::new()
            .add((actix_web::http::header::STRICT_TRANSPORT_SECURITY, HSTS));
        App::new()
            .app_data(state.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(http::BODY_LIMIT)
                    .error_handler(http::error::bad_page_input),
            )
            .app_data(web::QueryConfig::default().error_handler(http::error::bad_page_input))
            .app_data(web::PayloadConfig::default().limit(http::BODY_LIMIT))
            // Inside `observe`, so that its refusals (413, 408) are logged and counted.
            .wrap(actix_web::middleware::from_fn(http::ui::localize))
            .wrap(actix_web::middleware::from_fn(http::read_body))
            .wrap(actix_web::middleware::from_fn(http::observability::observe))
            // Outermost: every response, refusals included.
            .wrap(actix_web::middleware::Condition::new(
                sends_hsts(&settings),
                hsts,
            ))
            .configure(|cfg| http::routes(cfg, &settings))
    })
    .listen(listener)?;
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    server = server
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads_per_worker(workers))
        .keep_alive(KEEP_ALIVE);
    Ok(server.run())
}

/// Whether responses carry HSTS (`Strict-Transport-Security`). The issuer is the public
/// URL, so an https issuer always gets it. So does `cookie_secure` (the default for any
/// issuer but a plain-http loopback one): browsers keep Secure cookies only from https
/// pages, so such a deployment signs nobody in unless it is reached over TLS (typically
/// through a proxy that terminates it), and insisting on TLS costs it nothing. Over plain
/// http browsers ignore the header (RFC 6797 §8.1). Keying on `cookie_secure` also lets
/// the tests, whose issuers are always `http://127.0.0.1`, see it (`COOKIE_SECURE=true`).
pub fn sends_hsts(settings: &Settings) -> bool {
    settings.cookie_secure || url::Url::parse(&settings.issuer).is_ok_and(|u| u.scheme() == "https")
}

/// `Strict-Transport-Security` for `sends_hsts` deployments: two years, this host only
/// (`includeSubDomains` would bind sibling hosts the operator may not serve over TLS).
pub const HSTS: &str = "max-age=63072000";

/// Runs `main` to its end on actix's runtime (a `System`, which its servers need), on this
/// thread.
pub fn block_on<T>(main: impl Future<Output = T>) -> T {
    actix_web::rt::System::new().block_on(main)
}

/// Runs `main`, and `metrics` beside it, until `main` stops; then stops `metrics`. Both
/// stop on SIGTERM; the main server's graceful drain decides the result.
pub async fn until_stopped(main: Server, metrics: Option<Server>) -> std::io::Result<()> {
    match metrics {
        Some(m) => {
            let handle = m.handle();
            actix_web::rt::spawn(m);
            let result = main.await;
            handle.stop(true).await;
            result
        }
        None => main.await,
    }
}

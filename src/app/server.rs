//! The HTTP server: every route of the API and the pages registered on one
//! actix-web app (the one place that knows both doors), the JSON error
//! handlers, and the HTTP/1.1 server over problem-answering connections.
//!
//! Must never: hold a handler or a rule; it only wires.

use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpRequest, HttpResponse};

use crate::api;
use crate::http::problem::{Kind, Problem};
use crate::http::{AppState, JSON_LIMIT};

/// Registers every route and the JSON error handler on an app.
pub(super) fn configure(
    state: web::Data<AppState>,
    pages: web::Data<crate::ui::Pages>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(pages)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _req| Problem::bad_request(err.to_string()).into()),
            )
            .app_data(web::PathConfig::default().error_handler(|err, _req| {
                Problem::not_found().with_detail(err.to_string()).into()
            }))
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|err, _req| Problem::bad_request(err.to_string()).into()),
            )
            .default_service(web::to(unrouted));
        api::routes(&mut utoipa_actix_web::service_config::ServiceConfig::new(
            cfg,
        ));
        cfg.service(api::openapi::serve)
            .configure(api::dev::routes)
            .configure(crate::ui::routes);
    }
}

/// A request no route took: 405 with `Allow` (RFC 9110 §15.5.6) when the
/// path is a documented route's and only the method is wrong, else 404.
async fn unrouted(req: HttpRequest) -> HttpResponse {
    let allowed = api::openapi::methods_of(req.path());
    if allowed.is_empty() {
        return actix_web::ResponseError::error_response(&Problem::not_found());
    }
    let problem = Problem::new(
        Kind::MethodNotAllowed,
        "This route does not take this method",
    )
    .with_detail(format!("{} takes {}", req.path(), allowed.join(", ")));
    let mut resp = actix_web::ResponseError::error_response(&problem);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}

/// The HTTP/1.1 server: actix-web's app on actix-http, as `HttpServer`
/// builds it, but over [`crate::http::wire::ProblemIo`] connections so that the
/// HTTP layer's own error responses are problem documents too. Stops on
/// SIGINT/SIGTERM: no new connections, in-flight requests finish, idle
/// keep-alive connections close.
pub(super) fn http_server(
    listener: TcpListener,
    addr: SocketAddr,
    state: web::Data<AppState>,
    pages: web::Data<crate::ui::Pages>,
    workers: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<actix_web::dev::Server> {
    use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
    // Signals are `stop_on_signals`'s: actix would install its handlers
    // only once the server is first polled, after `start` has returned.
    let mut builder = actix_server::Server::build().disable_signals();
    if workers > 0 {
        builder = builder.workers(workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    Ok(builder
        .listen("vanthu-http", listener, move || {
            let shutdown = shutdown.clone();
            let app = App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::http::metrics::record_http,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::http::request_id::assign,
                ))
                .configure(configure(state.clone(), pages.clone()))
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            let http = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .local_addr(addr)
                .finish(map_config(app, |_| actix_web::dev::AppConfig::default()));
            let tls = tls.clone();
            fn_service(move |io: actix_rt::net::TcpStream| {
                let tls = tls.clone();
                async move {
                    let _ = io.set_nodelay(true);
                    let peer = io.peer_addr().ok();
                    let conn = match tls {
                        None => crate::http::tls::Conn::Plain(io),
                        Some(acceptor) => crate::http::tls::Conn::Tls(Box::new(
                            acceptor
                                .accept(io)
                                .await
                                .map_err(actix_http::error::DispatchError::Io)?,
                        )),
                    };
                    Ok((
                        crate::http::wire::ProblemIo::new(conn),
                        actix_http::Protocol::Http1,
                        peer,
                    ))
                }
            })
            .and_then(http)
        })?
        .run())
}

//! The introspection endpoint (RFC 7662 §2), JSON or an RFC 9701 signed JWT.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_request::client_request;
use crate::http::error::ApiError;
use crate::http::state::{State, read_mostly_cached};
use crate::protocol::client_auth::authenticate;
use crate::protocol::introspection::{JWT_RESPONSE_TYPE, introspect, jwt_response};
use crate::protocol::{OAuthError, Params};

/// What the response is: RFC 7662 JSON, or the RFC 9701 JWT when the client asks for it.
enum Reply {
    Json(serde_json::Value),
    Jwt(String),
}

fn wants_jwt(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(JWT_RESPONSE_TYPE))
        })
}

pub async fn introspect_token(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let (params, creds) = client_request(&req, &body)?;
    let endpoint = state
        .settings
        .endpoint(crate::protocol::features::INTROSPECTION.path);
    let as_jwt = wants_jwt(&req);
    let reply = read_mostly_cached(&state, move |ctx| {
        let client = authenticate(&creds, &endpoint, ctx)?;
        // §2.1: the protected resource itself authenticates; a public client cannot.
        if client.is_public() {
            return Err(OAuthError::invalid_client("client authentication failed"));
        }
        let info = lookup(&params, &client, ctx)?;
        Ok(if as_jwt {
            Reply::Jwt(jwt_response(info, &client, ctx)?)
        } else {
            Reply::Json(info)
        })
    })
    .await?;
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    Ok(match reply {
        Reply::Json(info) => response.json(info),
        Reply::Jwt(jwt) => response.content_type(JWT_RESPONSE_TYPE).body(jwt),
    })
}

fn lookup(
    params: &Params,
    client: &crate::store::Client,
    ctx: &crate::protocol::Context<'_>,
) -> Result<serde_json::Value, OAuthError> {
    introspect(params.required("token")?, client, ctx)
}

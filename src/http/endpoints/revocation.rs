//! The revocation endpoint (RFC 7009 §2).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_request::client_request;
use crate::http::error::ApiError;
use crate::http::state::{State, blocking};
use crate::protocol::client_auth::authenticate;
use crate::protocol::revocation::revoke;

pub async fn revoke_token(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let (params, creds) = client_request(&req, &body)?;
    let endpoint = state
        .settings
        .endpoint(crate::protocol::features::REVOCATION.path);
    let client_id = blocking(&state, move |ctx| {
        // §2.1: the client authenticates first.
        let client = authenticate(&creds, &endpoint, ctx)?;
        revoke(params.required("token")?, &client, ctx)?;
        Ok(client.id)
    })
    .await?;
    crate::audit::token_revoked(&client_id);
    // §2.2: 200 whether or not there was anything to revoke; the body is ignored.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .finish())
}

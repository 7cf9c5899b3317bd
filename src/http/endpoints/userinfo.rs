//! The UserInfo endpoint (OIDC Core §5.3), GET or POST, token per RFC 6750 §2.1/§2.2.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::dpop::{self, resource_token};
use crate::http::error::BearerError;
use crate::http::state::{State, read_mostly_cached};
use crate::protocol::userinfo;

pub async fn userinfo(
    req: HttpRequest,
    body: web::Bytes,
    state: State,
) -> Result<HttpResponse, BearerError> {
    let presented = std::sync::Arc::new(resource_token(&req, &body, &state).await?);
    let asked = presented.clone();
    let (response, client_requires) = read_mostly_cached(&state, move |ctx| {
        userinfo::userinfo_answer(&asked.token, asked.presented(), ctx)
    })
    .await
    .map_err(|e| presented.refusal(&state, e))?;
    let mut ok = HttpResponse::Ok();
    ok.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_EXPOSE_HEADERS, dpop::EXPOSED_HEADERS));
    let response = match response {
        userinfo::UserinfoResponse::Json(claims) => ok.json(claims),
        userinfo::UserinfoResponse::Jwt(jwt) => ok.content_type("application/jwt").body(jwt),
    };
    // RFC 9449 §8.2: the next nonce, ahead of need.
    let nonce = dpop::nonce_on_success(&state, presented.proof.is_some(), client_requires);
    Ok(dpop::with_nonce(response, nonce))
}

//! The `openidconnect` crate as a relying party of a test instance: discovery, then a
//! client for one registered app.

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};

use crate::helpers::{TestApp, TestClient};

/// A discovered client: authorization endpoint set, token and userinfo from discovery.
pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An HTTP client for the crate that does not follow redirects.
fn rp_http() -> openidconnect::reqwest::Client {
    crate::helpers::http_builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The relying party for `client`, configured from the instance's discovery document.
pub async fn relying_party(
    app: &TestApp,
    client: &TestClient,
) -> (Rp, openidconnect::reqwest::Client) {
    let http = rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery document parses");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        client.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap());
    (rp, http)
}

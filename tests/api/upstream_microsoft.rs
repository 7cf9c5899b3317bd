//! The `microsoft` preset (issue 24) end to end, against a fake multi-tenant Entra ID
//! (`upstream_peers::fake_entra`): the issuer template is filled with each token's `tid`
//! and checked (never turned off), a token naming another tenant in `iss` than in `tid`
//! is refused, and only the tenants of `tenants` sign in.

use portcullis::protocol::registration::ClientDraft;
use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Options, Outcome, TestApp, TestClient, spawn_app_with};
use crate::upstream::{browser, first_inputs, open_callback, refusals, users};
use crate::upstream_peers::fake_entra::{EntraUser, FakeEntra, TEMPLATE};

const CONTOSO: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const FABRIKAM: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

async fn with_entra(tenants: &str) -> (FakeEntra, TestApp, TestClient) {
    let entra = FakeEntra::start().await;
    let table = format!(
        "[[upstream]]\nid = \"ms\"\nname = \"Microsoft\"\npreset = \"microsoft\"\ndiscovery_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\njit = true\ntenants = {tenants}\n",
        entra.discovery_url(),
        entra.client_id,
        entra.client_secret
    );
    let down = spawn_app_with(Options {
        config: Some(table),
        ..Options::default()
    })
    .await;
    let client = down.add_client_with(ClientDraft {
        first_party: true,
        ..ClientDraft::default()
    });
    (entra, down, client)
}

/// A whole sign-in with "Sign in with Microsoft", as `user`, in a new browser.
async fn sign_in_as(
    entra: &FakeEntra,
    down: &TestApp,
    client: &TestClient,
    user: EntraUser,
) -> Outcome {
    entra.next(user);
    let browser = browser();
    let (url, _) = down.authorize_url(client, &[]);
    let (_, _, html) = browser.open(&url).await.page();
    assert!(html.contains("Sign in with Microsoft"), "{html}");
    let start = browser
        .http
        .post(down.url("/upstream/ms/start"))
        .form(&first_inputs(&html))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let to_entra = Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to_entra.as_str().starts_with(&entra.url), "{to_entra}");
    let back = browser.http.get(to_entra).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND);
    let back = Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    open_callback(&browser, &back).await
}

fn refused_page(outcome: Outcome) {
    let (_, status, html) = outcome.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Sign-in refused"), "{html}");
}

#[tokio::test]
async fn a_microsoft_sign_in_is_held_to_the_issuer_of_its_tenant_and_to_the_listed_tenants() {
    let (entra, down, client) = with_entra(&format!("[\"{CONTOSO}\"]")).await;

    // A Contoso user, with Contoso's issuer: signed in, a JIT account made, the identity
    // keyed by the tenant's issuer.
    let outcome = sign_in_as(&entra, &down, &client, EntraUser::new(CONTOSO, "megan")).await;
    assert_eq!(outcome.left().port(), Some(1));
    let made = users(&down).await;
    assert_eq!(made.len(), 1);
    let links = down.store.list_upstream_identities(&made[0].id).unwrap();
    assert_eq!(links[0].issuer, TEMPLATE.replace("{tenantid}", CONTOSO));
    assert_eq!(links[0].provider, "ms");

    // Contoso's `tid`, but another tenant's issuer: refused by the issuer check (the
    // template is filled with the `tid`, and `iss` must be that).
    let mut crossed = EntraUser::new(CONTOSO, "mallory");
    crossed.iss = Some(TEMPLATE.replace("{tenantid}", FABRIKAM));
    refused_page(sign_in_as(&entra, &down, &client, crossed).await);
    assert_eq!(refusals(&down, "id_token_issuer").await, 1);

    // A `tid` that is no tenant id cannot steer the expected issuer anywhere.
    let mut steering = EntraUser::new("evil.example/x", "eve");
    steering.iss = Some("https://login.microsoftonline.com/evil.example/x/v2.0".into());
    refused_page(sign_in_as(&entra, &down, &client, steering).await);
    assert_eq!(refusals(&down, "id_token_issuer").await, 2);

    // A well-formed token of Fabrikam, which `tenants` does not list: refused.
    refused_page(sign_in_as(&entra, &down, &client, EntraUser::new(FABRIKAM, "frank")).await);
    assert_eq!(refusals(&down, "tenant_not_allowed").await, 1);

    assert_eq!(users(&down).await.len(), 1, "nothing made by the refusals");
    assert_eq!(
        entra.token_requests(),
        4,
        "each went as far as its ID token"
    );
}

#[tokio::test]
async fn with_every_tenant_allowed_each_tenants_user_gets_their_own_identity() {
    let (entra, down, client) = with_entra("[\"*\"]").await;
    for tid in [CONTOSO, FABRIKAM] {
        let outcome = sign_in_as(
            &entra,
            &down,
            &client,
            EntraUser::new(tid, &format!("u{}", &tid[..4])),
        )
        .await;
        assert_eq!(outcome.left().port(), Some(1), "{tid}");
    }
    let made = users(&down).await;
    assert_eq!(made.len(), 2);
    let mut issuers: Vec<String> = made
        .iter()
        .map(|u| {
            down.store.list_upstream_identities(&u.id).unwrap()[0]
                .issuer
                .clone()
        })
        .collect();
    issuers.sort();
    let mut expected = vec![
        TEMPLATE.replace("{tenantid}", CONTOSO),
        TEMPLATE.replace("{tenantid}", FABRIKAM),
    ];
    expected.sort();
    assert_eq!(issuers, expected);
}

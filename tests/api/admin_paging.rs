//! Listings of the admin API at scale (issue 26): clients a page at a time, in the order
//! of the whole listing, which callers that ask for no page still get whole.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_api::{automation, call, get};
use crate::helpers::spawn_app;

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn clients_are_listed_a_page_at_a_time_in_the_order_of_the_whole_list() {
    let app = spawn_app().await;
    let (_, token) = automation(&app).await;
    for _ in 0..5 {
        app.add_client(false);
    }
    let whole = ids(&get(&app, &token, "/clients").await);
    assert!(whole.len() >= 6, "{whole:?}");

    let mut paged = Vec::new();
    let mut query = "/clients?limit=2".to_owned();
    loop {
        let page = ids(&get(&app, &token, &query).await);
        assert!(page.len() <= 2);
        paged.extend(page.iter().cloned());
        if page.len() < 2 {
            break;
        }
        query = format!("/clients?limit=2&after={}", page.last().unwrap());
    }
    assert_eq!(paged, whole, "the pages, end to end, are the whole list");

    let first = ids(&get(&app, &token, "/clients?limit=3").await);
    assert_eq!(first, whole[..3].to_vec(), "a page is the head of the list");
    let rest = ids(&get(&app, &token, &format!("/clients?after={}", whole[2])).await);
    assert_eq!(
        rest,
        whole[3..].to_vec(),
        "`after` alone pages 50 at a time"
    );

    let (status, body) = call(&app, Some(&token), Method::GET, "/clients?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

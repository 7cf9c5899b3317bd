//! Pairwise subject identifiers at registration (OIDC Core §8.1): the client's sector.

use super::{check_fetch_uri, metadata_error};
use crate::protocol::OAuthError;

/// The sector of a pairwise client: the host of its `sector_identifier_uri`, whose
/// document (`listed`, fetched by the caller) must list every redirect URI; without one,
/// the host of its redirect URIs, which must then all share one host (§8.1: "If the Client
/// has not provided a value for sector_identifier_uri ... the host component of the
/// redirect_uri ... if there are multiple hostnames ... the Client MUST register a
/// sector_identifier_uri").
pub fn sector(
    redirect_uris: &[String],
    sector_identifier_uri: Option<&str>,
    listed: Option<&[String]>,
    issuer: &str,
) -> Result<String, OAuthError> {
    let host = |uri: &str| {
        url::Url::parse(uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    };
    if let Some(uri) = sector_identifier_uri {
        check_fetch_uri("sector_identifier_uri", uri, issuer)?;
        let listed = listed.ok_or_else(|| {
            metadata_error("sector_identifier_uri could not be fetched as a JSON array of URIs")
        })?;
        if let Some(missing) = redirect_uris.iter().find(|r| !listed.contains(r)) {
            return Err(metadata_error(format!(
                "sector_identifier_uri does not list the redirect URI {missing}"
            )));
        }
        return host(uri).ok_or_else(|| metadata_error("sector_identifier_uri has no host"));
    }
    let mut hosts: Vec<String> = redirect_uris.iter().filter_map(|r| host(r)).collect();
    hosts.sort();
    hosts.dedup();
    match hosts.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(metadata_error(
            "a pairwise client needs redirect URIs with a host, or a sector_identifier_uri",
        )),
        _ => Err(metadata_error(
            "redirect URIs on several hosts need a sector_identifier_uri for pairwise subjects",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_sector_is_the_one_redirect_host_or_the_sector_documents_host() {
        let one_host = uris(&["https://rp.example/a", "https://rp.example/b"]);
        assert_eq!(
            sector(&one_host, None, None, "https://op").unwrap(),
            "rp.example"
        );
        let two_hosts = uris(&["https://a.example/cb", "https://b.example/cb"]);
        assert!(sector(&two_hosts, None, None, "https://op").is_err());
        let listed = uris(&[
            "https://a.example/cb",
            "https://b.example/cb",
            "https://c/x",
        ]);
        assert_eq!(
            sector(
                &two_hosts,
                Some("https://sector.example/s.json"),
                Some(&listed),
                "https://op"
            )
            .unwrap(),
            "sector.example"
        );
        let short = uris(&["https://a.example/cb"]);
        let error = sector(
            &two_hosts,
            Some("https://sector.example/s.json"),
            Some(&short),
            "https://op",
        )
        .unwrap_err();
        assert!(error.description.unwrap().contains("b.example"));
        assert!(
            sector(
                &two_hosts,
                Some("https://sector.example/s"),
                None,
                "https://op"
            )
            .is_err()
        );
        assert!(
            sector(
                &two_hosts,
                Some("http://sector.example/s"),
                Some(&listed),
                "https://op"
            )
            .is_err()
        );
    }
}

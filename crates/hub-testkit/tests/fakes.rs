//! The fake providers answer like the real ones: auth, error bodies,
//! pagination, throttling, slowness and failures; and each passes its own
//! catalog manifest's connection test.

use std::time::Duration;

use hub_connectors::{AuthType, KeyLocation, ProviderManifest};
use hub_testkit::fakes::{
    DEFAULT_TOKEN, FakeProvider, Kind, Mode, QUICKBOOKS_REALM_ID, XERO_TENANT_ID,
};
use reqwest::StatusCode;
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn get(
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("request reaches the fake");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn manifest(kind: Kind) -> ProviderManifest {
    hub_connectors::catalog()
        .expect("catalog")
        .into_iter()
        .find(|m| m.code == kind.code())
        .expect("the fake's provider is in the catalog")
}

// ---------------------------------------------------------------- all kinds

/// What the connection test of the integration-manager will do: the
/// manifest's test call, against `config.base_url`, credentials injected as
/// the manifest says.
#[tokio::test]
async fn every_fake_passes_its_manifest_test_call_and_rejects_a_bad_credential() {
    for kind in Kind::ALL {
        let fake = FakeProvider::start(kind).await;
        fake.set_valid_token("s3cret-token");
        let m = manifest(kind);
        let config = fake.config();
        m.validate_config(&config)
            .unwrap_or_else(|e| panic!("{kind:?}: fake config fails the manifest schema: {e:?}"));
        assert_eq!(m.base_url_for(&config), fake.base_url());

        for (token, expect_ok) in [("s3cret-token", true), ("wrong", false)] {
            let path = m.render_test_path(&config).unwrap();
            let mut url = format!("{}{path}", m.base_url_for(&config));
            let mut request_headers: Vec<(String, String)> =
                m.render_headers(&config).unwrap().into_iter().collect();
            match m.auth_type {
                AuthType::OAuth2 => {
                    let prefix = &m.oauth.as_ref().unwrap().token_prefix;
                    request_headers.push(("Authorization".into(), format!("{prefix}{token}")));
                }
                AuthType::ApiKey => {
                    let key = m.api_key.as_ref().unwrap();
                    match key.location {
                        KeyLocation::Header => {
                            request_headers.push((key.name.clone(), key.value(token)))
                        }
                        KeyLocation::Query => {
                            let sep = if url.contains('?') { '&' } else { '?' };
                            url = format!("{url}{sep}{}={}", key.name, key.value(token));
                        }
                        KeyLocation::Body => {
                            unreachable!("no faked provider puts the key in a body")
                        }
                    }
                }
                other => panic!("{kind:?}: unexpected auth type {other}"),
            }
            let headers: Vec<(&str, &str)> = request_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let (status, _, body) = get(&url, &headers).await;
            let failed_in_body = m
                .test_call
                .failure_fields
                .iter()
                .any(|f| body.get(f).is_some());
            if expect_ok {
                assert!(
                    m.test_call.expect_status.contains(&status.as_u16()) && !failed_in_body,
                    "{kind:?}: {status} {body}"
                );
            } else if kind == Kind::AlphaVantage {
                // Alpha Vantage refuses a key with a 200 whose body says so.
                assert!(
                    status == StatusCode::OK && failed_in_body,
                    "{kind:?}: {body}"
                );
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{kind:?}: {body}");
            }
        }
        let sent = fake.requests();
        assert_eq!(sent.len(), 2, "{kind:?}");
        assert_eq!(sent[0].method, "GET");
    }
}

#[tokio::test]
async fn every_fake_throttles_with_retry_after_then_recovers() {
    for kind in Kind::ALL {
        let fake = FakeProvider::start(kind).await;
        let m = manifest(kind);
        let url = format!(
            "{}{}",
            fake.base_url(),
            m.render_test_path(&fake.config()).unwrap()
        );
        fake.set_mode_for(
            2,
            Mode::RateLimited {
                retry_after_secs: 7,
            },
        );
        for _ in 0..2 {
            let (status, headers, body) = get(&url, &[]).await;
            if kind == Kind::AlphaVantage {
                // Alpha Vantage throttles with a 200 and a note, no Retry-After.
                assert_eq!(status, StatusCode::OK);
                assert!(body["Note"].is_string(), "{body}");
                assert!(headers.get("retry-after").is_none());
                continue;
            }
            if kind == Kind::Salesforce {
                // Salesforce's limit answer is a 403 without Retry-After.
                assert_eq!(status, StatusCode::FORBIDDEN);
                assert_eq!(body[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED", "{body}");
                assert!(headers.get("retry-after").is_none());
                continue;
            }
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{kind:?}");
            assert_eq!(headers["retry-after"], "7", "{kind:?}");
            assert!(body.is_object(), "{kind:?}: {body}");
        }
        // Back to normal: with no credentials now a 401, not a 429.
        let (status, _, body) = get(&url, &[]).await;
        if kind == Kind::AlphaVantage {
            assert!(body["Error Message"].is_string(), "{body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{kind:?}");
        }
        assert_eq!(fake.requests().len(), 3);
    }
}

#[tokio::test]
async fn every_fake_can_fail_and_be_slow() {
    for kind in Kind::ALL {
        let fake = FakeProvider::start(kind).await;
        fake.set_mode(Mode::ServerError);
        let (status, _, body) = get(&fake.base_url(), &[]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{kind:?}");
        assert!(body.is_object() || body.is_array(), "{kind:?}: {body}");

        fake.set_mode(Mode::Slow(Duration::from_secs(5)));
        let quick = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let err = quick.get(fake.base_url()).send().await.unwrap_err();
        assert!(err.is_timeout(), "{kind:?}: {err}");
        fake.set_mode(Mode::Normal);
        fake.stop().await;
    }
}

#[tokio::test]
async fn recorded_requests_show_what_was_sent() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    assert_eq!(fake.valid_token(), DEFAULT_TOKEN);
    let url = format!(
        "{}/crm/v3/objects/contacts?limit=2&properties=email%2Cfirstname",
        fake.base_url()
    );
    get(
        &url,
        &[("Authorization", &bearer(DEFAULT_TOKEN)), ("X-Trace", "t1")],
    )
    .await;
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/crm/v3/objects/contacts")
    );
    assert_eq!(r.query, "limit=2&properties=email%2Cfirstname");
    assert_eq!(
        r.query_param("properties").as_deref(),
        Some("email,firstname")
    );
    assert_eq!(r.header("authorization"), Some("Bearer fake-valid-token"));
    assert_eq!(r.header("X-TRACE"), Some("t1"));
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

// ------------------------------------------------------------------ HubSpot

#[tokio::test]
async fn hubspot_lists_contacts_with_cursor_paging() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_valid_token("tok");
    let auth = bearer("tok");
    let base = format!("{}/crm/v3/objects/contacts", fake.base_url());

    let (status, headers, page1) =
        get(&format!("{base}?limit=10"), &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-hubspot-ratelimit-remaining"));
    let results = page1["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    let first = &results[0];
    assert_eq!(first["id"], "1");
    assert_eq!(first["archived"], false);
    assert!(first["properties"]["email"].as_str().unwrap().contains('@'));
    assert!(
        first["properties"]["hs_lastmodifieddate"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(first["createdAt"].is_string() && first["updatedAt"].is_string());
    let after = page1["paging"]["next"]["after"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut seen = 10;
    let mut cursor = Some(after);
    while let Some(after) = cursor {
        let (_, _, page) = get(
            &format!("{base}?limit=10&after={after}"),
            &[("Authorization", &auth)],
        )
        .await;
        seen += page["results"].as_array().unwrap().len();
        cursor = page["paging"]["next"]["after"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 25, "every contact once");

    let (_, _, deals) = get(
        &format!(
            "{}/crm/v3/objects/deals?limit=1&properties=amount",
            fake.base_url()
        ),
        &[("Authorization", &auth)],
    )
    .await;
    let props = deals["results"][0]["properties"].as_object().unwrap();
    assert!(props.contains_key("amount") && !props.contains_key("dealname"));
}

#[tokio::test]
async fn hubspot_rejects_missing_and_wrong_tokens_with_its_error_shape() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let url = format!("{}/crm/v3/objects/contacts?limit=1", fake.base_url());
    for headers in [
        vec![],
        vec![("Authorization", "Bearer nope")],
        vec![("Authorization", "tok")],
    ] {
        let (status, _, body) = get(&url, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["status"], "error");
        assert_eq!(body["category"], "INVALID_AUTHENTICATION");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Authentication credentials not found")
        );
        assert!(body["correlationId"].is_string());
    }
    fake.set_mode(Mode::RateLimited {
        retry_after_secs: 1,
    });
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["errorType"], "RATE_LIMIT");
}

// --------------------------------------------------------------- QuickBooks

#[tokio::test]
async fn quickbooks_answers_companyinfo_and_pages_queries() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let auth = bearer(DEFAULT_TOKEN);
    let company = format!("{}/v3/company/{QUICKBOOKS_REALM_ID}", fake.base_url());
    let json_headers = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json"),
    ];

    let (status, _, info) = get(
        &format!("{company}/companyinfo/{QUICKBOOKS_REALM_ID}"),
        &json_headers,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["CompanyInfo"]["CompanyName"], "Fake Freight LLC");
    assert!(info["time"].is_string());

    let query = |q: &str| {
        format!(
            "{company}/query?query={}",
            q.replace(' ', "%20")
                .replace('\'', "%27")
                .replace('>', "%3E")
        )
    };
    let (status, _, page) = get(
        &query("select * from Invoice STARTPOSITION 1 MAXRESULTS 20"),
        &json_headers,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let qr = &page["QueryResponse"];
    assert_eq!(qr["Invoice"].as_array().unwrap().len(), 20);
    assert_eq!(
        (qr["startPosition"].as_u64(), qr["maxResults"].as_u64()),
        (Some(1), Some(20))
    );
    let inv = &qr["Invoice"][0];
    assert!(inv["SyncToken"].is_string() && inv["Id"].is_string());
    assert!(
        inv["MetaData"]["LastUpdatedTime"]
            .as_str()
            .unwrap()
            .ends_with("-08:00")
    );

    let (_, _, page2) = get(
        &query("select * from Invoice STARTPOSITION 21 MAXRESULTS 20"),
        &json_headers,
    )
    .await;
    assert_eq!(
        page2["QueryResponse"]["Invoice"].as_array().unwrap().len(),
        10
    );
    let (_, _, page3) = get(
        &query("select * from Invoice STARTPOSITION 41 MAXRESULTS 20"),
        &json_headers,
    )
    .await;
    assert_eq!(page3["QueryResponse"], serde_json::json!({}));

    let (_, _, recent) = get(
        &query("select * from Invoice where Metadata.LastUpdatedTime > '2024-01-01T00:20:00-08:00' STARTPOSITION 1 MAXRESULTS 1000"),
        &json_headers,
    )
    .await;
    let n = recent["QueryResponse"]["Invoice"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        n, 10,
        "incremental filter cuts: invoices 21 to 30 are newer"
    );
}

#[tokio::test]
async fn quickbooks_speaks_xml_unless_asked_for_json() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let url = format!(
        "{}/v3/company/{QUICKBOOKS_REALM_ID}/companyinfo/{QUICKBOOKS_REALM_ID}",
        fake.base_url()
    );
    let (status, headers, body) = get(&url, &[("Authorization", &bearer(DEFAULT_TOKEN))]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().contains("xml"));
    assert!(
        body.as_str()
            .unwrap()
            .contains("<CompanyName>Fake Freight LLC</CompanyName>")
    );
}

#[tokio::test]
async fn quickbooks_rejects_bad_tokens_and_foreign_realms_with_a_fault() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let accept = ("Accept", "application/json");
    let url = |realm: &str| format!("{}/v3/company/{realm}/companyinfo/{realm}", fake.base_url());

    let (status, _, body) = get(
        &url(QUICKBOOKS_REALM_ID),
        &[("Authorization", "Bearer expired"), accept],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["Fault"]["type"], "AUTHENTICATION");
    let error = &body["Fault"]["Error"][0];
    assert_eq!(
        error["Message"],
        "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    );
    assert_eq!(error["code"], "3200");

    let (status, _, body) = get(
        &url("123"),
        &[("Authorization", &bearer(DEFAULT_TOKEN)), accept],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["Fault"]["type"], "AuthorizationFault");

    fake.set_mode(Mode::RateLimited {
        retry_after_secs: 60,
    });
    let (status, _, body) = get(&url(QUICKBOOKS_REALM_ID), &[accept]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["Fault"]["Error"][0]["Message"]
            .as_str()
            .unwrap()
            .contains("ThrottleExceeded")
    );
}

// --------------------------------------------------------------------- Xero

#[tokio::test]
async fn xero_pages_invoices_with_ms_dates_and_reports_limits() {
    let fake = FakeProvider::start(Kind::Xero).await;
    let auth = bearer(DEFAULT_TOKEN);
    let headers = [
        ("Authorization", auth.as_str()),
        ("xero-tenant-id", XERO_TENANT_ID),
        ("Accept", "application/json"),
    ];
    let (status, h, org) = get(&format!("{}/Organisation", fake.base_url()), &headers).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(org["Status"], "OK");
    assert_eq!(org["Organisations"][0]["OrganisationID"], XERO_TENANT_ID);
    assert_eq!(h["x-minlimit-remaining"], "59");
    assert_eq!(h["x-daylimit-remaining"], "4999");

    let (_, h, page1) = get(&format!("{}/Invoices?page=1", fake.base_url()), &headers).await;
    assert_eq!(h["x-minlimit-remaining"], "58");
    let invoices = page1["Invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 100);
    let date = invoices[0]["UpdatedDateUTC"].as_str().unwrap();
    assert!(
        date.starts_with("/Date(") && date.ends_with("+0000)/"),
        "{date}"
    );
    assert_eq!(page1["pagination"]["pageCount"], 2);
    let (_, _, page2) = get(&format!("{}/Invoices?page=2", fake.base_url()), &headers).await;
    assert_eq!(page2["Invoices"].as_array().unwrap().len(), 50);
    let (_, _, page3) = get(&format!("{}/Invoices?page=3", fake.base_url()), &headers).await;
    assert_eq!(page3["Invoices"].as_array().unwrap().len(), 0);

    let mut since = headers.to_vec();
    since.push(("If-Modified-Since", "2024-01-01T10:00:00"));
    let (_, _, recent) = get(&format!("{}/Invoices?page=1", fake.base_url()), &since).await;
    let n = recent["Invoices"].as_array().unwrap().len();
    assert_eq!(
        n, 30,
        "If-Modified-Since filters: invoices 121 to 150 are newer"
    );

    let (status, _, connections) =
        get(&format!("{}/connections", fake.origin()), &headers[..1]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(connections[0]["tenantId"], XERO_TENANT_ID);
}

#[tokio::test]
async fn xero_checks_token_then_tenant_and_throttles_with_its_headers() {
    let fake = FakeProvider::start(Kind::Xero).await;
    let url = format!("{}/Organisation", fake.base_url());

    let (status, _, body) = get(
        &url,
        &[
            ("Authorization", "Bearer bad"),
            ("xero-tenant-id", XERO_TENANT_ID),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (body["Title"].as_str(), body["Status"].as_u64()),
        (Some("Unauthorized"), Some(401))
    );
    assert_eq!(body["Detail"], "AuthenticationUnsuccessful");

    let auth = bearer(DEFAULT_TOKEN);
    let (status, _, body) = get(&url, &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no xero-tenant-id");
    assert_eq!(body["Title"], "Forbidden");
    let (status, _, _) = get(
        &url,
        &[
            ("Authorization", &auth),
            ("xero-tenant-id", "00000000-0000-0000-0000-000000000000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "unknown tenant");

    fake.set_mode(Mode::RateLimited {
        retry_after_secs: 30,
    });
    let (status, h, _) = get(&url, &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "30");
    assert_eq!(h["x-minlimit-remaining"], "0");
    assert!(h.contains_key("x-daylimit-remaining"));
    assert_eq!(h["x-rate-limit-problem"], "minute");
}

// ------------------------------------------------------------------ Samsara

#[tokio::test]
async fn samsara_pages_vehicle_locations_by_cursor() {
    let fake = FakeProvider::start(Kind::Samsara).await;
    let auth = bearer(DEFAULT_TOKEN);
    let mut url = format!("{}/fleet/vehicles/locations?limit=3", fake.base_url());
    let mut seen = Vec::new();
    loop {
        let (status, _, page) = get(&url, &[("Authorization", &auth)]).await;
        assert_eq!(status, StatusCode::OK);
        for v in page["data"].as_array().unwrap() {
            let loc = &v["location"];
            assert!(
                loc["latitude"].is_f64() && loc["longitude"].is_f64() && loc["speed"].is_number()
            );
            assert!(loc["time"].as_str().unwrap().ends_with('Z'));
            seen.push(v["id"].as_str().unwrap().to_owned());
        }
        if page["pagination"]["hasNextPage"] == false {
            break;
        }
        let cursor = page["pagination"]["endCursor"].as_str().unwrap();
        url = format!(
            "{}/fleet/vehicles/locations?limit=3&after={cursor}",
            fake.base_url()
        );
    }
    assert_eq!(seen.len(), 7);

    let (status, _, body) = get(
        &format!("{}/fleet/vehicles?after=garbage", fake.base_url()),
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["requestId"].is_string());
}

#[tokio::test]
async fn samsara_rejects_bad_tokens_with_message_and_request_id() {
    let fake = FakeProvider::start(Kind::Samsara).await;
    let url = format!("{}/fleet/vehicles?limit=1", fake.base_url());
    let (status, _, body) = get(&url, &[("Authorization", "Bearer nope")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].is_string() && body["requestId"].is_string());
    let (status, _, body) = get(&url, &[("Authorization", &bearer(DEFAULT_TOKEN))]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["name"], "Truck 01");
}

// ------------------------------------------------------------------ NewsAPI

#[tokio::test]
async fn newsapi_takes_the_key_in_header_or_query() {
    let fake = FakeProvider::start(Kind::NewsApi).await;
    fake.set_valid_token("news-key");
    let url = format!("{}/everything?q=freight&pageSize=10", fake.base_url());

    let (status, _, body) = get(&url, &[("X-Api-Key", "news-key")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["totalResults"], 42);
    let article = &body["articles"][0];
    assert!(article["source"]["name"].is_string() && article["title"].is_string());
    assert!(article["url"].is_string() && article["publishedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["articles"].as_array().unwrap().len(), 10);

    let (status, _, _) = get(&format!("{url}&apiKey=news-key"), &[]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, body) = get(&url, &[("X-Api-Key", "wrong")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (body["status"].as_str(), body["code"].as_str()),
        (Some("error"), Some("apiKeyInvalid"))
    );
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "apiKeyMissing");
}

#[tokio::test]
async fn newsapi_errors_are_json_with_codes() {
    let fake = FakeProvider::start(Kind::NewsApi).await;
    let key = [("X-Api-Key", DEFAULT_TOKEN)];
    let (status, _, body) = get(&format!("{}/everything", fake.base_url()), &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "parametersMissing");

    let (status, _, body) = get(
        &format!("{}/everything?q=x&page=2&pageSize=100", fake.base_url()),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(body["code"], "maximumResultsReached");

    fake.set_mode(Mode::RateLimited {
        retry_after_secs: 3600,
    });
    let (status, h, body) = get(&format!("{}/everything?q=x", fake.base_url()), &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "3600");
    assert_eq!(
        (body["status"].as_str(), body["code"].as_str()),
        (Some("error"), Some("rateLimited"))
    );
}

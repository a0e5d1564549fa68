//! The OAuth 2.0 endpoints of the HubSpot, Salesforce, QuickBooks and Xero
//! fakes behave like the real ones (the dance, PKCE, single-use codes,
//! refresh-token rotation, expiry, error bodies, client authentication);
//! the fakes enforce and account a rate limit; Salesforce's REST API pages
//! queries and updates records.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hub_testkit::fakes::{FakeProvider, Kind, Mode, QUICKBOOKS_REALM_ID, XERO_TENANT_ID};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn answer(response: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// The scopes the hub asks for: the catalog manifest's.
fn scopes(kind: Kind) -> String {
    let manifest = hub_connectors::catalog()
        .expect("catalog")
        .into_iter()
        .find(|m| m.code == kind.code())
        .expect("in the catalog");
    manifest.oauth.expect("an OAuth provider").scopes.join(" ")
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `GET authorize` with `extra` over the usual parameters; the 302's
/// `Location` query, or the answer when there is no redirect.
async fn authorize(
    fake: &FakeProvider,
    extra: &[(&str, &str)],
) -> Result<HashMap<String, String>, (StatusCode, String)> {
    let (client_id, _) = fake.oauth_client();
    let scope = scopes(fake.kind());
    let challenge = challenge(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", REDIRECT),
        ("scope", &scope),
        ("state", "st-123"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        params.push((k, v));
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    let url = format!("{}?{query}", fake.authorize_url().expect("an OAuth fake"));
    let response = client().get(url).send().await.expect("authorize answers");
    if response.status() != StatusCode::FOUND {
        let status = response.status();
        return Err((status, response.text().await.unwrap_or_default()));
    }
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let url = url::Url::parse(&location).unwrap();
    Ok(url.query_pairs().into_owned().collect())
}

/// `POST token` with the provider's own client authentication.
async fn token(fake: &FakeProvider, form: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let (id, secret) = fake.oauth_client();
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = client().post(fake.token_url().expect("an OAuth fake"));
    match fake.kind() {
        Kind::QuickBooks | Kind::Xero => request = request.basic_auth(&id, Some(&secret)),
        _ => form.extend([
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ]),
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = request
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .expect("token endpoint answers");
    answer(response).await
}

/// The whole dance: authorize, then exchange the code; the token answer.
async fn connect(fake: &FakeProvider) -> Value {
    let redirect = authorize(fake, &[]).await.expect("a redirect with a code");
    assert_eq!(redirect["state"], "st-123");
    let (status, headers, body) = token(
        fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &redirect["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{:?}: {body}", fake.kind());
    assert_eq!(headers["cache-control"], "no-store");
    body
}

/// A call of the API with `access_token`: its status, headers and body.
async fn call_api(fake: &FakeProvider, access_token: &str) -> (StatusCode, HeaderMap, Value) {
    let base = fake.base_url();
    let url = match fake.kind() {
        Kind::HubSpot => format!("{base}/crm/v3/objects/contacts?limit=1"),
        Kind::QuickBooks => {
            format!("{base}/v3/company/{QUICKBOOKS_REALM_ID}/companyinfo/{QUICKBOOKS_REALM_ID}")
        }
        Kind::Xero => format!("{base}/Organisation"),
        _ => format!("{base}/services/data/v60.0/limits"),
    };
    let response = client()
        .get(url)
        .bearer_auth(access_token)
        .header("accept", "application/json")
        .header("xero-tenant-id", XERO_TENANT_ID)
        .send()
        .await
        .expect("API answers");
    answer(response).await
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

// ------------------------------------------------------------ the dance

#[tokio::test]
async fn the_oauth_dance_works_on_every_oauth_fake_and_its_token_opens_the_api() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        fake.set_redirect_uri(REDIRECT);
        fake.set_valid_token("not-the-one-the-dance-gives");
        let config = fake.oauth_config();
        assert_eq!(
            config["oauth_token_url"],
            fake.token_url().unwrap().as_str()
        );
        assert_eq!(
            config["oauth_authorize_url"],
            fake.authorize_url().unwrap().as_str()
        );

        let redirect = authorize(&fake, &[]).await.unwrap();
        assert_eq!(
            redirect.get("realmId").map(String::as_str),
            (kind == Kind::QuickBooks).then_some(QUICKBOOKS_REALM_ID),
            "{kind:?}"
        );
        let body = token(
            &fake,
            &[
                ("grant_type", "authorization_code"),
                ("code", &redirect["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
        .2;
        let access = text(&body["access_token"]);
        match kind {
            Kind::HubSpot => {
                assert_eq!(body["token_type"], "bearer");
                assert_eq!(body["expires_in"], 1800);
                assert!(body["refresh_token"].is_string());
            }
            Kind::QuickBooks => {
                assert_eq!(body["token_type"], "bearer");
                assert_eq!(body["expires_in"], 3600);
                assert_eq!(body["x_refresh_token_expires_in"], 8_726_400);
                assert!(body["refresh_token"].is_string());
            }
            Kind::Xero => {
                assert_eq!(body["token_type"], "Bearer");
                assert_eq!(body["expires_in"], 1800);
                assert_eq!(body["scope"], scopes(kind).as_str());
                assert!(body["refresh_token"].is_string(), "offline_access asked");
                assert_eq!(text(&body["id_token"]).split('.').count(), 3);
            }
            _ => {
                assert_eq!(body["token_type"], "Bearer");
                assert_eq!(body["instance_url"], fake.origin().as_str());
                assert!(body.get("expires_in").is_none(), "{body}");
                assert!(body["refresh_token"].is_string(), "refresh_token asked");
                assert!(text(&body["issued_at"]).parse::<i64>().is_ok());
                assert!(body["signature"].is_string() && body["id"].is_string());
            }
        }
        let (status, _, api) = call_api(&fake, access).await;
        assert_eq!(status, StatusCode::OK, "{kind:?}: {api}");
        let (status, _, _) = call_api(&fake, "never-issued").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{kind:?}");

        let grants: Vec<_> = fake
            .token_requests()
            .iter()
            .map(|r| r.form_param("grant_type"))
            .collect();
        assert_eq!(grants, [Some("authorization_code".to_owned())]);
    }
}

#[tokio::test]
async fn xero_connections_lists_the_tenant_for_an_issued_token() {
    let fake = FakeProvider::start(Kind::Xero).await;
    let body = connect(&fake).await;
    let response = client()
        .get(format!("{}/connections", fake.origin()))
        .bearer_auth(text(&body["access_token"]))
        .send()
        .await
        .unwrap();
    let (status, _, tenants) = answer(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenants[0]["tenantId"], XERO_TENANT_ID);
    assert_eq!(tenants[0]["tenantType"], "ORGANISATION");
}

#[tokio::test]
async fn pkce_mismatch_and_code_reuse_are_refused() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let code = authorize(&fake, &[]).await.unwrap()["code"].clone();
        let exchange = |verifier: &'static str, code: String| {
            let fake = &fake;
            async move {
                token(
                    fake,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", verifier),
                    ],
                )
                .await
            }
        };
        let (status, _, body) = exchange("a-verifier-that-does-not-hash-to-it", code.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind:?}");
        if kind == Kind::HubSpot {
            assert_eq!(body["status"], "BAD_AUTH_CODE", "{body}");
        } else {
            assert_eq!(body["error"], "invalid_grant", "{kind:?}: {body}");
        }
        // A code is gone after its first use, even a failed one.
        let (status, _, _) = exchange(VERIFIER, code).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind:?}");

        let code = authorize(&fake, &[]).await.unwrap()["code"].clone();
        assert_eq!(exchange(VERIFIER, code.clone()).await.0, StatusCode::OK);
        let (status, _, body) = exchange(VERIFIER, code).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{kind:?}: reused code: {body}"
        );
    }
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let code = authorize(&fake, &[]).await.unwrap()["code"].clone();
    let (status, _, body) = token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_tokens_rotate_on_quickbooks_and_xero_only() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let first = connect(&fake).await;
        let old = text(&first["refresh_token"]).to_owned();
        let refresh = |rt: String| {
            let fake = &fake;
            async move {
                token(
                    fake,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
            }
        };
        let (status, _, body) = refresh(old.clone()).await;
        assert_eq!(status, StatusCode::OK, "{kind:?}: {body}");
        let (api, _, _) = call_api(&fake, text(&body["access_token"])).await;
        assert_eq!(
            api,
            StatusCode::OK,
            "{kind:?}: a refreshed token opens the API"
        );

        let (again, _, again_body) = refresh(old.clone()).await;
        match kind {
            Kind::QuickBooks | Kind::Xero => {
                let new = text(&body["refresh_token"]);
                assert_ne!(new, old, "{kind:?} rotates");
                assert_eq!(
                    again,
                    StatusCode::BAD_REQUEST,
                    "{kind:?}: the old one is spent"
                );
                assert_eq!(again_body["error"], "invalid_grant");
                assert_eq!(refresh(new.to_owned()).await.0, StatusCode::OK);
            }
            Kind::HubSpot => {
                assert_eq!(body["refresh_token"], old.as_str());
                assert_eq!(again, StatusCode::OK);
            }
            _ => {
                assert!(body.get("refresh_token").is_none(), "{body}");
                assert_eq!(body["instance_url"], fake.origin().as_str());
                assert_eq!(again, StatusCode::OK);
            }
        }
        assert_eq!(
            fake.refresh_count(),
            3 - u32::from(matches!(kind, Kind::HubSpot | Kind::Salesforce)),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn bad_refresh_tokens_get_each_providers_error_body() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let (status, _, body) = token(
            &fake,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "never-issued"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind:?}");
        match kind {
            Kind::HubSpot => {
                assert_eq!(body["status"], "BAD_REFRESH_TOKEN");
                assert_eq!(body["message"], "missing or invalid refresh token");
                assert!(body["correlationId"].is_string());
            }
            Kind::Salesforce => {
                assert_eq!(body["error"], "invalid_grant");
                assert_eq!(body["error_description"], "expired access/refresh token");
            }
            _ => assert_eq!(body["error"], "invalid_grant", "{body}"),
        }
        assert_eq!(fake.refresh_count(), 1);
    }
    let hubspot = FakeProvider::start(Kind::HubSpot).await;
    let (status, _, body) = token(
        &hubspot,
        &[
            ("grant_type", "authorization_code"),
            ("code", "never-issued"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "BAD_AUTH_CODE");
}

#[tokio::test]
async fn revoked_refresh_tokens_get_invalid_grant() {
    let fake = FakeProvider::start(Kind::Xero).await;
    let tokens = connect(&fake).await;
    fake.revoke_refresh_tokens();
    let (status, _, body) = token(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", text(&tokens["refresh_token"])),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn each_provider_wants_its_own_client_authentication() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let (id, secret) = fake.oauth_client();
        let form = |with_fields: bool| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            s.append_pair("grant_type", "refresh_token");
            s.append_pair("refresh_token", "whatever");
            if with_fields {
                s.append_pair("client_id", &id);
                s.append_pair("client_secret", &secret);
            }
            s.finish()
        };
        let send = |request: reqwest::RequestBuilder, body: String| async move {
            answer(
                request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        };
        let url = fake.token_url().unwrap();
        let (by_fields, _, _) = send(client().post(&url), form(true)).await;
        let (by_basic, _, _) = send(
            client().post(&url).basic_auth(&id, Some(&secret)),
            form(false),
        )
        .await;
        let (wrong, _, body) = send(
            client().post(&url).basic_auth(&id, Some("wrong")),
            form(false),
        )
        .await;
        // A client that authenticates reaches the grant check (400: unknown token).
        let (fields_ok, basic_ok) = match kind {
            Kind::QuickBooks | Kind::Xero => (false, true),
            Kind::HubSpot => (true, false),
            _ => (true, true),
        };
        let expect = |ok: bool| {
            if ok {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            }
        };
        assert_eq!(by_fields, expect(fields_ok), "{kind:?} with form fields");
        assert_eq!(by_basic, expect(basic_ok), "{kind:?} with Basic");
        assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{kind:?}");
        assert_eq!(body["error"], "invalid_client");
    }
}

#[tokio::test]
async fn authorize_refuses_like_the_provider() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_redirect_uri(REDIRECT);
    // Bad client or redirect: a page, never a redirect.
    let (status, page) = authorize(&fake, &[("client_id", "someone-else")])
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid_client_id"), "{page}");
    let (status, _) = authorize(&fake, &[("redirect_uri", "http://127.0.0.1:9/other")])
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let redirect = authorize(
        &fake,
        &[("scope", "crm.objects.contacts.read no.such.scope")],
    )
    .await
    .unwrap();
    assert_eq!(redirect["error"], "invalid_scope");
    assert_eq!(redirect["state"], "st-123");
    assert!(!redirect.contains_key("code"));
    let redirect = authorize(&fake, &[("scope", "")]).await.unwrap();
    assert_eq!(redirect["error"], "invalid_scope");
    let redirect = authorize(&fake, &[("response_type", "token")])
        .await
        .unwrap();
    assert_eq!(redirect["error"], "unsupported_response_type");

    fake.set_user_denies(true);
    let redirect = authorize(&fake, &[]).await.unwrap();
    assert_eq!(redirect["error"], "access_denied");
    assert_eq!(redirect["state"], "st-123");
    fake.set_user_denies(false);
    assert!(authorize(&fake, &[]).await.unwrap().contains_key("code"));
}

#[tokio::test]
async fn any_http_redirect_is_accepted_until_one_is_registered() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    let ask = |redirect: &str| {
        let encoded: String = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={encoded}&state=s",
            fake.authorize_url().unwrap(),
            fake.oauth_client().0
        );
        async move { client().get(url).send().await.unwrap() }
    };
    let response = ask("https://hub.example.com/cb").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://hub.example.com/cb?code="),
        "{location}"
    );
    assert_eq!(
        ask("ftp://x/cb").await.status(),
        StatusCode::BAD_REQUEST,
        "not http(s)"
    );
    fake.set_redirect_uri(REDIRECT);
    assert_eq!(
        ask("https://hub.example.com/cb").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(ask(REDIRECT).await.status(), StatusCode::FOUND);
}

// ------------------------------------------------------------------ expiry

#[tokio::test]
async fn expired_access_tokens_get_the_providers_401() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let access = text(&connect(&fake).await["access_token"]).to_owned();
        assert_eq!(call_api(&fake, &access).await.0, StatusCode::OK);
        fake.expire_access_tokens();
        let (status, _, body) = call_api(&fake, &access).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{kind:?}");
        match kind {
            Kind::HubSpot => assert_eq!(body["category"], "EXPIRED_AUTHENTICATION"),
            Kind::QuickBooks => assert_eq!(body["Fault"]["type"], "AUTHENTICATION"),
            Kind::Xero => assert!(text(&body["Detail"]).starts_with("TokenExpired")),
            _ => assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID"),
        }
    }
}

#[tokio::test]
async fn the_access_ttl_sets_expires_in_and_the_real_expiry() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    fake.set_access_ttl(Duration::from_secs(1));
    let body = connect(&fake).await;
    assert_eq!(body["expires_in"], 1);
    let access = text(&body["access_token"]);
    assert_eq!(call_api(&fake, access).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call_api(&fake, access).await.0, StatusCode::UNAUTHORIZED);
}

// ------------------------------------------------------- token endpoint modes

#[tokio::test]
async fn the_token_endpoint_fails_on_its_own_mode() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let tokens = connect(&fake).await;
    let rt = text(&tokens["refresh_token"]).to_owned();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    fake.set_token_mode_for(1, Mode::ServerError);
    fake.set_token_mode_for(
        1,
        Mode::RateLimited {
            retry_after_secs: 3,
        },
    );
    assert_eq!(
        token(&fake, &refresh).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (status, headers, _) = token(&fake, &refresh).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3");
    // The API is not affected by the token endpoint's mode.
    assert_eq!(
        call_api(&fake, text(&tokens["access_token"])).await.0,
        StatusCode::OK
    );
    assert_eq!(token(&fake, &refresh).await.0, StatusCode::OK);
    assert_eq!(fake.refresh_count(), 3);
    assert_eq!(fake.token_requests().len(), 4);

    fake.set_token_mode(Mode::Slow(Duration::from_secs(5)));
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = quick
        .post(fake.token_url().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

// ------------------------------------------------------------- rate limits

#[tokio::test]
async fn an_enforced_rate_limit_throttles_like_each_provider_and_is_accounted() {
    for kind in Kind::OAUTH {
        let fake = FakeProvider::start(kind).await;
        let token = fake.valid_token();
        fake.set_rate_limit(3, Duration::from_millis(1500));
        let mut statuses = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let (status, headers, body) = call_api(&fake, &token).await;
            statuses.push(status.as_u16());
            last = Some((headers, body));
        }
        let (headers, body) = last.unwrap();
        let over = if kind == Kind::Salesforce { 403 } else { 429 };
        assert_eq!(statuses, [200, 200, 200, over, over], "{kind:?}");
        match kind {
            Kind::HubSpot => {
                assert_eq!(body["errorType"], "RATE_LIMIT");
                assert_eq!(headers["x-hubspot-ratelimit-max"], "3");
                assert_eq!(headers["x-hubspot-ratelimit-remaining"], "0");
                assert_eq!(headers["x-hubspot-ratelimit-interval-milliseconds"], "1500");
            }
            Kind::QuickBooks => {
                assert!(text(&body["Fault"]["Error"][0]["Message"]).contains("ThrottleExceeded"));
            }
            Kind::Xero => {
                assert_eq!(headers["x-rate-limit-problem"], "minute");
                let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=2).contains(&retry), "{retry}");
            }
            _ => {
                assert_eq!(body[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
                assert_eq!(headers["sforce-limit-info"], "api-usage=5/3");
            }
        }
        assert_eq!(
            (fake.max_in_any_window(), fake.throttled_count()),
            (5, 2),
            "{kind:?}"
        );
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(
            call_api(&fake, &token).await.0,
            StatusCode::OK,
            "{kind:?}: a new window"
        );
        assert_eq!(fake.max_in_any_window(), 5);
    }
}

#[tokio::test]
async fn a_client_within_the_limit_is_never_throttled() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_rate_limit(2, Duration::from_millis(300));
    let token = fake.valid_token();
    for _ in 0..3 {
        for _ in 0..2 {
            assert_eq!(call_api(&fake, &token).await.0, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(350)).await;
    }
    assert_eq!((fake.max_in_any_window(), fake.throttled_count()), (2, 0));
}

#[tokio::test]
async fn recording_off_keeps_no_requests_and_serves_many_at_once() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_recording(false);
    let token = fake.valid_token();
    let http = client();
    let url = format!("{}/crm/v3/objects/contacts?limit=1", fake.base_url());
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(fake.requests().is_empty());
    // Token calls are kept for token_requests() either way.
    connect(&fake).await;
    assert_eq!(fake.token_requests().len(), 1);
    fake.set_recording(true);
    call_api(&fake, &token).await;
    assert_eq!(fake.requests().len(), 1);
}

// -------------------------------------------------------------- Salesforce

async fn sf_get(
    fake: &FakeProvider,
    path_and_query: &str,
    batch: Option<u32>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = client()
        .get(format!("{}{path_and_query}", fake.origin()))
        .bearer_auth(fake.valid_token());
    if let Some(n) = batch {
        request = request.header("Sforce-Query-Options", format!("batchSize={n}"));
    }
    answer(request.send().await.unwrap()).await
}

fn soql(q: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/services/data/v60.0/query?q={encoded}")
}

#[tokio::test]
async fn salesforce_pages_queries_with_next_records_url() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    let (status, headers, first) = sf_get(
        &fake,
        &soql("SELECT Id, Name, StageName FROM Opportunity"),
        Some(200),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(text_header(&headers, "sforce-limit-info").starts_with("api-usage="));
    assert_eq!(first["totalSize"], 250);
    assert_eq!(first["done"], false);
    let records = first["records"].as_array().unwrap();
    assert_eq!(records.len(), 200);
    assert_eq!(records[0]["attributes"]["type"], "Opportunity");
    let id = text(&records[0]["Id"]);
    assert_eq!((id.len(), &id[..3]), (18, "006"));
    assert!(
        records[0].get("Amount").is_none(),
        "only the selected fields"
    );

    let next = text(&first["nextRecordsUrl"]);
    assert!(next.starts_with("/services/data/v60.0/query/01g"), "{next}");
    let (status, _, second) = sf_get(&fake, next, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["done"], true);
    assert_eq!(second["records"].as_array().unwrap().len(), 50);
    assert!(second.get("nextRecordsUrl").is_none());

    // An incremental query: the literal is unquoted, as SOQL wants it.
    let (_, _, since) = sf_get(
        &fake,
        &soql("SELECT Id FROM Account WHERE LastModifiedDate > 2024-01-01T08:20:30Z ORDER BY LastModifiedDate LIMIT 10"),
        None,
    )
    .await;
    assert_eq!(since["totalSize"], 10, "{since}");
    assert_eq!(since["done"], true);
    let (status, _, quoted) = sf_get(
        &fake,
        &soql("SELECT Id FROM Account WHERE LastModifiedDate > '2024-01-01T08:20:30Z'"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{quoted}");
    let (status, _, bad) = sf_get(&fake, &soql("SELECT Nope FROM Opportunity"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad[0]["errorCode"], "INVALID_FIELD");
}

fn text_header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn salesforce_patch_updates_an_opportunity() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    let (_, _, list) = sf_get(&fake, &soql("SELECT Id FROM Opportunity LIMIT 1"), None).await;
    let id = text(&list["records"][0]["Id"]).to_owned();
    let url = format!(
        "{}/services/data/v60.0/sobjects/Opportunity/{id}",
        fake.origin()
    );
    let patch = |body: &'static str, url: String| {
        let fake = &fake;
        async move {
            client()
                .patch(url)
                .bearer_auth(fake.valid_token())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let response = patch(r#"{"StageName":"Closed Won"}"#, url.clone()).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers().contains_key("sforce-limit-info"));
    let (_, _, record) = sf_get(
        &fake,
        &format!("/services/data/v60.0/sobjects/Opportunity/{id}"),
        None,
    )
    .await;
    assert_eq!(record["StageName"], "Closed Won");

    let (status, _, body) = answer(patch(r#"{"NoSuchField__c":1}"#, url.clone()).await).await;
    assert_eq!(
        (status, &body[0]["errorCode"]),
        (StatusCode::BAD_REQUEST, &Value::from("INVALID_FIELD"))
    );
    let missing = format!(
        "{}/services/data/v60.0/sobjects/Opportunity/006Fk0000999999IAW",
        fake.origin()
    );
    let (status, _, body) = answer(patch(r#"{"StageName":"x"}"#, missing).await).await;
    assert_eq!(
        (status, &body[0]["errorCode"]),
        (StatusCode::NOT_FOUND, &Value::from("NOT_FOUND"))
    );
}

#[tokio::test]
async fn salesforce_refuses_bad_sessions_with_invalid_session_id() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    let (status, headers, body) = call_api(&fake, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert!(headers.contains_key("sforce-limit-info"));
    assert_eq!(fake.config()["instance_url"], fake.origin().as_str());
}

//! The fakes can be synced: every paging style walks all the records
//! exactly once, incremental filters return only what changed, deleted
//! records disappear, writes show up in reads, and the providers' traps
//! (QuickBooks' stale SyncToken, HubSpot's search cap, Zoho's 304) are
//! there.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hub_testkit::fakes::{
    DEFAULT_TOKEN, FakeProvider, Kind, QUICKBOOKS_REALM_ID, Selection, WriteOp, XERO_TENANT_ID,
};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let response = request.send().await.expect("the fake answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// Every item once: no repeats, and the expected number.
fn assert_each_once(ids: &[String], expected: usize) {
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a record came twice");
    assert_eq!(ids.len(), expected, "every record once");
}

// ------------------------------------------------------------------ HubSpot

async fn hubspot_list(fake: &FakeProvider, object: &str, extra: &str) -> Vec<Value> {
    let http = client();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/crm/v3/objects/{object}?limit=100{extra}",
            fake.base_url()
        );
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let (status, _, page) = answer(http.get(url).bearer_auth(DEFAULT_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let results = page["results"].as_array().expect("results").clone();
        assert!(results.len() <= 100);
        out.extend(results);
        match page["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    out
}

async fn hubspot_search(fake: &FakeProvider, object: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, page) = answer(
        client()
            .post(format!(
                "{}/crm/v3/objects/{object}/search",
                fake.base_url()
            ))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&body),
    )
    .await;
    (status, page)
}

/// Every page of a search, `after` being the offset HubSpot hands back.
async fn hubspot_search_all(fake: &FakeProvider, object: &str, mut body: Value) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (status, page) = hubspot_search(fake, object, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page["results"].as_array().expect("results").clone());
        match page["paging"]["next"]["after"].as_str() {
            Some(a) => body["after"] = json!(a),
            None => break,
        }
    }
    out
}

fn ids(records: &[Value], key: &str) -> Vec<String> {
    records.iter().map(|r| text(&r[key])).collect()
}

#[tokio::test]
async fn hubspot_list_walks_every_record_once_and_deleted_ones_disappear() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("contacts", 1234);
    let all = hubspot_list(&fake, "contacts", "").await;
    assert_each_once(&ids(&all, "id"), 1234);
    assert_eq!(fake.count("contacts"), 1234);

    let gone = fake.delete("contacts", [1, 2, 500, 1234]);
    assert_eq!(gone, ["1", "2", "500", "1234"]);
    let created = fake.create("contacts", json!({"email": "new@example.com"}));
    assert_eq!(created, "1235");
    let all = hubspot_list(&fake, "contacts", "").await;
    let seen = ids(&all, "id");
    assert_each_once(&seen, 1231);
    for id in &gone {
        assert!(!seen.contains(id), "{id} was deleted");
    }
    assert!(seen.contains(&created));
    let archived = hubspot_list(&fake, "contacts", "&archived=true").await;
    assert_eq!(ids(&archived, "id"), gone);
    assert!(
        archived
            .iter()
            .all(|r| r["archived"] == true && r["archivedAt"].is_string())
    );
    assert_eq!(
        fake.record("contacts", created.as_str()).unwrap()["properties"]["email"],
        "new@example.com"
    );
    assert!(fake.record("contacts", "500").is_none());
}

#[tokio::test]
async fn hubspot_search_finds_only_what_changed_since_and_sorts_by_modification() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("deals", 5000);
    let since = fake.now();
    let touched = fake.touch("deals", Selection::fraction(0.01));
    assert_eq!(touched.len(), 50);
    let later = fake.touch("deals", [7]);
    let body = json!({
        "filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": since.timestamp_millis().to_string()},
        ]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["amount", "dealstage"],
        "limit": 20,
    });
    let found = hubspot_search_all(&fake, "deals", body).await;
    let found_ids = ids(&found, "id");
    let mut expected: Vec<String> = touched.clone();
    expected.extend(later.clone());
    expected.sort();
    expected.dedup();
    let mut sorted = found_ids.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "only the touched deals");
    // Ascending by modification: the deal touched last comes last.
    assert_eq!(found_ids.last(), later.first());
    let modified: Vec<String> = found
        .iter()
        .map(|r| text(&r["properties"]["hs_lastmodifieddate"]))
        .collect();
    assert!(modified.windows(2).all(|w| w[0] <= w[1]), "{modified:?}");
    assert!(modified.iter().all(|m| m.ends_with('Z') && m.len() == 24));
    // The change is visible: touched deals carry new amounts.
    let seven = fake.record("deals", "7").unwrap();
    assert_ne!(seven["properties"]["amount"], "10500.00");

    // An ISO value works as well as epoch milliseconds.
    let (status, page) = hubspot_search(
        &fake,
        "deals",
        json!({"filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since.to_rfc3339()},
        ]}], "limit": 200}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], expected.len());
}

#[tokio::test]
async fn hubspot_search_stops_at_ten_thousand_results_as_hubspot_does() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_count("contacts", 25_000);
    let (status, page) =
        hubspot_search(&fake, "contacts", json!({"limit": 200, "after": "9800"})).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 25_000);
    assert_eq!(page["results"].as_array().unwrap().len(), 200);
    assert_eq!(page["paging"]["next"]["after"], "10000");
    let (status, page) =
        hubspot_search(&fake, "contacts", json!({"limit": 10, "after": "10000"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert_eq!(page["category"], "VALIDATION_ERROR");
    let (status, _) = hubspot_search(&fake, "contacts", json!({"limit": 201})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "limit is 200 at most");

    // The way around the cap: key on hs_object_id.
    let body = json!({
        "filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "20000"}]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "limit": 200,
    });
    let rest = hubspot_search_all(&fake, "contacts", body).await;
    let rest_ids = ids(&rest, "id");
    assert_each_once(&rest_ids, 5000);
    assert_eq!(rest_ids.first().map(String::as_str), Some("20001"));
}

#[tokio::test]
async fn hubspot_writes_show_up_in_reads_and_are_kept() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    let http = client();
    let base = format!("{}/crm/v3/objects/contacts", fake.base_url());
    let since = fake.now();
    let (status, _, updated) = answer(
        http.patch(format!("{base}/3"))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({"properties": {"lastname": "Synced", "email": "s@example.com"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["properties"]["lastname"], "Synced");
    let updated_at = chrono::DateTime::parse_from_rfc3339(&text(&updated["updatedAt"])).unwrap();
    assert!(updated_at > since);

    let (status, _, created) = answer(
        http.post(&base)
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({"properties": {"email": "fresh@example.com", "firstname": "Fresh"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let new_id = text(&created["id"]);

    let (status, _, refused) = answer(
        http.patch(format!("{base}/3"))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({"properties": {"no_such_property": "x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text(&refused["message"]).contains("PROPERTY_DOESNT_EXIST"));
    let (status, _, _) = answer(
        http.patch(format!("{base}/999999"))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({"properties": {"lastname": "x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let changed = hubspot_search_all(
        &fake,
        "contacts",
        json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GT", "value": since.timestamp_millis()},
        ]}], "properties": ["lastname", "email"]}),
    )
    .await;
    assert_eq!(ids(&changed, "id"), vec!["3".to_owned(), new_id.clone()]);
    assert_eq!(changed[0]["properties"]["email"], "s@example.com");
    let record = fake.record("contacts", 3).unwrap();
    assert_eq!(record["properties"]["lastname"], "Synced");

    let writes = fake.writes();
    assert_eq!(writes.len(), 2, "refused writes are not kept");
    assert_eq!(
        (writes[0].op, writes[0].id.as_str()),
        (WriteOp::Update, "3")
    );
    assert_eq!(writes[0].fields["lastname"], "Synced");
    assert_eq!(
        (writes[1].op, writes[1].id.clone()),
        (WriteOp::Create, new_id)
    );
    assert_eq!(writes[0].object, "contacts");
}

// --------------------------------------------------------------- Salesforce

fn soql(fake: &FakeProvider, q: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("{}/services/data/v60.0/query?q={encoded}", fake.origin())
}

async fn sf_all(fake: &FakeProvider, q: &str) -> (Vec<Value>, u64, usize) {
    let http = client();
    let (status, _, mut page) = answer(http.get(soql(fake, q)).bearer_auth(DEFAULT_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let total = page["totalSize"].as_u64().unwrap();
    let mut records = Vec::new();
    let mut pages = 1;
    loop {
        records.extend(page["records"].as_array().unwrap().clone());
        if page["done"] == true {
            break;
        }
        let next = format!("{}{}", fake.origin(), text(&page["nextRecordsUrl"]));
        let (status, _, next_page) = answer(http.get(next).bearer_auth(DEFAULT_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{next_page}");
        page = next_page;
        pages += 1;
    }
    (records, total, pages)
}

#[tokio::test]
async fn salesforce_queries_page_by_2000_and_filter_on_last_modified_date() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    fake.set_count("Opportunity", 4500);
    let (all, total, pages) = sf_all(&fake, "SELECT Id, Amount FROM Opportunity").await;
    assert_eq!((total, pages), (4500, 3));
    assert_each_once(&ids(&all, "Id"), 4500);

    let since = fake.now();
    let touched = fake.touch("Opportunity", [10, 4000, 4499]);
    let gone = fake.delete("Opportunity", [11]);
    let q = format!(
        "SELECT Id, StageName, LastModifiedDate FROM Opportunity WHERE LastModifiedDate > {} ORDER BY LastModifiedDate",
        since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let (changed, _, _) = sf_all(&fake, &q).await;
    assert_eq!(ids(&changed, "Id"), touched);
    assert!(text(&changed[0]["LastModifiedDate"]).ends_with("+0000"));
    let (all, total, _) = sf_all(&fake, "SELECT Id FROM Opportunity ORDER BY Id").await;
    assert_eq!(total, 4499);
    assert!(!ids(&all, "Id").contains(&gone[0]));
    let (status, _, count) = answer(
        client()
            .get(soql(&fake, "SELECT COUNT() FROM Opportunity"))
            .bearer_auth(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(
        (status, &count["totalSize"]),
        (StatusCode::OK, &json!(4499))
    );
    let (status, _, bad) = answer(
        client()
            .get(soql(&fake, "SELECT Id FROM Opportunity WHERE Name = 'x'"))
            .bearer_auth(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad[0]["errorCode"], "MALFORMED_QUERY");
}

#[tokio::test]
async fn salesforce_cursors_keep_the_result_set_of_when_the_query_ran() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    fake.set_count("Account", 4100);
    let http = client();
    let (_, _, first) = answer(
        http.get(soql(
            &fake,
            "SELECT Id FROM Account ORDER BY LastModifiedDate",
        ))
        .bearer_auth(DEFAULT_TOKEN),
    )
    .await;
    let mut seen = ids(first["records"].as_array().unwrap(), "Id");
    // Changes while the query is being read move records to the end of the
    // order; the cursor still returns each record once.
    fake.touch("Account", [1, 2, 3, 3000]);
    let mut page = first;
    while page["done"] == false {
        let next = format!("{}{}", fake.origin(), text(&page["nextRecordsUrl"]));
        page = answer(http.get(next).bearer_auth(DEFAULT_TOKEN)).await.2;
        seen.extend(ids(page["records"].as_array().unwrap(), "Id"));
    }
    assert_each_once(&seen, 4100);
}

#[tokio::test]
async fn salesforce_creates_and_updates_records_with_its_answers() {
    let fake = FakeProvider::start(Kind::Salesforce).await;
    let http = client();
    let objects = format!("{}/services/data/v60.0/sobjects", fake.origin());
    let (status, _, created) = answer(
        http.post(format!("{objects}/Opportunity"))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({"Name": "New lane", "StageName": "Prospecting", "CloseDate": "2024-09-30", "Amount": 1200.0})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (&created["success"], &created["errors"]),
        (&json!(true), &json!([]))
    );
    let id = text(&created["id"]);
    assert!(id.starts_with("006") && id.len() == 18, "{id}");

    let (status, _, missing) = answer(
        http.post(format!("{objects}/Opportunity"))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({"Name": "No stage"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(missing[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(missing[0]["fields"], json!(["StageName", "CloseDate"]));

    let response = http
        .patch(format!("{objects}/Opportunity/{id}"))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&json!({"Amount": 2400.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let record = fake.record("Opportunity", id.as_str()).unwrap();
    assert_eq!(record["Amount"], 2400.0);
    assert_eq!(record["Name"], "New lane");
    assert_eq!(record["attributes"]["type"], "Opportunity");
    let (all, total, _) = sf_all(&fake, "SELECT Id, Name FROM Opportunity").await;
    assert_eq!(total, 251);
    assert_eq!(text(&all[250]["Id"]), id);
    let ops: Vec<WriteOp> = fake.writes().iter().map(|w| w.op).collect();
    assert_eq!(ops, [WriteOp::Create, WriteOp::Update]);
}

// --------------------------------------------------------------- QuickBooks

fn qb_query(fake: &FakeProvider, q: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!(
        "{}/v3/company/{QUICKBOOKS_REALM_ID}/query?query={encoded}&minorversion=75",
        fake.base_url()
    )
}

async fn qb_get(fake: &FakeProvider, url: String) -> (StatusCode, Value) {
    let (status, _, body) = answer(
        client()
            .get(url)
            .bearer_auth(DEFAULT_TOKEN)
            .header("Accept", "application/json"),
    )
    .await;
    let _ = fake;
    (status, body)
}

async fn qb_post(fake: &FakeProvider, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, answer) = answer(
        client()
            .post(format!(
                "{}/v3/company/{QUICKBOOKS_REALM_ID}/{path}",
                fake.base_url()
            ))
            .bearer_auth(DEFAULT_TOKEN)
            .header("Accept", "application/json")
            .json(&body),
    )
    .await;
    (status, answer)
}

#[tokio::test]
async fn quickbooks_pages_with_startposition_and_filters_on_last_updated_time() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    fake.set_count("Invoice", 2500);
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let (status, page) = qb_get(
            &fake,
            qb_query(
                &fake,
                &format!("select * from Invoice STARTPOSITION {start} MAXRESULTS 1000"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let Some(invoices) = page["QueryResponse"]["Invoice"].as_array() else {
            break;
        };
        seen.extend(ids(invoices, "Id"));
        start += invoices.len();
    }
    assert_each_once(&seen, 2500);

    let since = fake.now();
    let touched = fake.touch("Invoice", [5, 6, 2400]);
    let q = format!(
        "select * from Invoice where Metadata.LastUpdatedTime > '{}' orderby Metadata.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000",
        since
            .with_timezone(&chrono::FixedOffset::west_opt(8 * 3600).unwrap())
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
    );
    let (_, page) = qb_get(&fake, qb_query(&fake, &q)).await;
    let changed = page["QueryResponse"]["Invoice"].as_array().unwrap();
    assert_eq!(ids(changed, "Id"), touched);
    assert!(text(&changed[0]["MetaData"]["LastUpdatedTime"]).ends_with("-08:00"));
    let (_, count) = qb_get(&fake, qb_query(&fake, "select count(*) from Invoice")).await;
    assert_eq!(count["QueryResponse"]["totalCount"], 2500);
}

#[tokio::test]
async fn quickbooks_updates_need_the_current_sync_token_or_get_5010() {
    let fake = FakeProvider::start(Kind::QuickBooks).await;
    let (status, read) = qb_get(
        &fake,
        format!(
            "{}/v3/company/{QUICKBOOKS_REALM_ID}/invoice/105",
            fake.base_url()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let token = text(&read["Invoice"]["SyncToken"]);
    let update = |token: &str| json!({"Id": "105", "SyncToken": token, "sparse": true, "PrivateNote": "synced by the hub"});
    let (status, updated) = qb_post(&fake, "invoice", update(&token)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let new_token = text(&updated["Invoice"]["SyncToken"]);
    assert_eq!(
        new_token.parse::<u64>().unwrap(),
        token.parse::<u64>().unwrap() + 1
    );
    assert_eq!(updated["Invoice"]["PrivateNote"], "synced by the hub");

    // The old token is stale now.
    let (status, stale) = qb_post(&fake, "invoice", update(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = &stale["Fault"]["Error"][0];
    assert_eq!(
        (&error["code"], &error["Message"], &stale["Fault"]["type"]),
        (
            &json!("5010"),
            &json!("Stale Object Error"),
            &json!("ValidationFault")
        )
    );
    // A change made at the provider makes the token stale as well.
    fake.touch("Invoice", Selection::ids(["105"]));
    let (status, _) = qb_post(&fake, "invoice", update(&new_token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, missing) = qb_post(&fake, "invoice", json!({"Id": "105"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(missing["Fault"]["Error"][0]["code"], "2020");

    let (status, created) = qb_post(
        &fake,
        "invoice",
        json!({"CustomerRef": {"value": "2"}, "Line": [{"Amount": 250.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["Invoice"]["SyncToken"], "0");
    assert_eq!(created["Invoice"]["TotalAmt"], 250.0);
    let id = text(&created["Invoice"]["Id"]);
    let record = fake.record("Invoice", id.as_str()).unwrap();
    assert_eq!(record["CustomerRef"]["value"], "2");

    let (status, deleted) = qb_post(
        &fake,
        "invoice?operation=delete",
        json!({"Id": id, "SyncToken": "0"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["Invoice"]["status"], "Deleted");
    assert!(fake.record("Invoice", id.as_str()).is_none());
    let ops: Vec<WriteOp> = fake.writes().iter().map(|w| w.op).collect();
    assert_eq!(ops, [WriteOp::Update, WriteOp::Create, WriteOp::Delete]);
}

// --------------------------------------------------------------------- Xero

fn xero(fake: &FakeProvider, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let _ = fake;
    request
        .bearer_auth(DEFAULT_TOKEN)
        .header("xero-tenant-id", XERO_TENANT_ID)
        .header("Accept", "application/json")
}

async fn xero_pages(fake: &FakeProvider, since: Option<&str>) -> Vec<Value> {
    let http = client();
    let mut out = Vec::new();
    for page in 1.. {
        let mut request = xero(
            fake,
            http.get(format!("{}/Invoices?page={page}", fake.base_url())),
        );
        if let Some(s) = since {
            request = request.header("If-Modified-Since", s);
        }
        let (status, _, body) = answer(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["Invoices"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 100);
        out.extend(items);
    }
    out
}

#[tokio::test]
async fn xero_pages_until_an_empty_page_and_filters_by_if_modified_since() {
    let fake = FakeProvider::start(Kind::Xero).await;
    fake.set_count("Invoices", 250);
    let all = xero_pages(&fake, None).await;
    assert_each_once(&ids(&all, "InvoiceID"), 250);

    let since = fake.now();
    let touched = fake.touch("Invoices", [3, 200]);
    let header = since.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let changed = xero_pages(&fake, Some(&header)).await;
    assert_eq!(ids(&changed, "InvoiceID"), touched);
    assert!(text(&changed[0]["Reference"]).contains("rev"));
    let updated = text(&changed[0]["UpdatedDateUTC"]);
    assert!(updated.starts_with("/Date(") && updated.ends_with("+0000)/"));

    // An update by InvoiceID, then a create; both read back.
    let before = fake.now();
    let (status, _, body) = answer(xero(
        &fake,
        client()
            .post(format!("{}/Invoices", fake.base_url()))
            .json(&json!({"Invoices": [{"InvoiceID": touched[1], "Reference": "Synced"}]})),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Invoices"][0]["Reference"], "Synced");
    let (status, _, created) = answer(xero(
        &fake,
        client()
            .put(format!("{}/Invoices", fake.base_url()))
            .json(&json!({"Type": "ACCREC", "Contact": {"ContactID": fake.record_id("Contacts", 1)}, "Reference": "New"})),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let new_id = text(&created["Invoices"][0]["InvoiceID"]);
    let (status, _, refused) = answer(xero(
        &fake,
        client()
            .put(format!("{}/Invoices", fake.base_url()))
            .json(&json!({"Reference": "No contact"})),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["Type"], "ValidationException");
    let header = before.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let changed = xero_pages(&fake, Some(&header)).await;
    assert_eq!(
        ids(&changed, "InvoiceID"),
        vec![touched[1].clone(), new_id.clone()]
    );
    assert_eq!(
        fake.record("Invoices", touched[1].as_str()).unwrap()["Reference"],
        "Synced"
    );
}

// --------------------------------------------------------------------- Zoho

fn zoho_auth() -> String {
    format!("Zoho-oauthtoken {DEFAULT_TOKEN}")
}

async fn zoho_get(
    fake: &FakeProvider,
    path: &str,
    since: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = client()
        .get(format!("{}/crm/v2/{path}", fake.base_url()))
        .header("Authorization", zoho_auth());
    if let Some(s) = since {
        request = request.header("If-Modified-Since", s);
    }
    answer(request).await
}

#[tokio::test]
async fn zoho_pages_with_more_records_and_answers_304_when_nothing_changed() {
    let fake = FakeProvider::start(Kind::Zoho).await;
    fake.set_count("Deals", 450);
    let mut seen = Vec::new();
    for page in 1.. {
        let (status, _, body) =
            zoho_get(&fake, &format!("Deals?page={page}&per_page=200"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(ids(body["data"].as_array().unwrap(), "id"));
        assert_eq!(body["info"]["page"], page);
        if body["info"]["more_records"] == false {
            break;
        }
    }
    assert_each_once(&seen, 450);
    let (status, _, body) = zoho_get(&fake, "Deals?page=4&per_page=200", None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

    let since = fake
        .now()
        .with_timezone(&chrono::FixedOffset::east_opt(19_800).unwrap());
    let header = since.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let (status, _, body) = zoho_get(&fake, "Deals", Some(&header)).await;
    assert_eq!((status, body), (StatusCode::NOT_MODIFIED, Value::Null));

    let touched = fake.touch("Deals", [9, 99]);
    let (status, _, body) = zoho_get(&fake, "Deals", Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(ids(data, "id"), touched);
    assert!(text(&data[0]["Modified_Time"]).ends_with("+05:30"));

    // Bearer is not Zoho's scheme.
    let (status, _, body) = answer(
        client()
            .get(format!("{}/crm/v2/Deals", fake.base_url()))
            .bearer_auth(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "INVALID_TOKEN");

    // A write shows up in the next incremental read.
    let id = &touched[0];
    let (status, _, put) = answer(
        client()
            .put(format!("{}/crm/v2/Deals/{id}", fake.base_url()))
            .header("Authorization", zoho_auth())
            .json(&json!({"data": [{"Stage": "Closed Won"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["data"][0]["code"], "SUCCESS");
    let after_put = text(&put["data"][0]["details"]["Modified_Time"]);
    let (_, _, body) = zoho_get(&fake, &format!("Deals/{id}"), None).await;
    assert_eq!(body["data"][0]["Stage"], "Closed Won");
    assert_eq!(text(&body["data"][0]["Modified_Time"]), after_put);
}

#[tokio::test]
async fn zoho_oauth_hands_out_tokens_and_refuses_with_a_200() {
    let fake = FakeProvider::start(Kind::Zoho).await;
    let (client_id, secret) = fake.oauth_client();
    let redirect = "http://127.0.0.1:9/oauth/callback";
    let authorize = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={}&scope=ZohoCRM.modules.ALL,ZohoCRM.settings.READ&access_type=offline&state=s1",
        fake.authorize_url().unwrap(),
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let response = client().get(authorize).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(query["accounts-server"], fake.origin());
    let token = |form: Vec<(&'static str, String)>| {
        let url = fake.token_url().unwrap();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        async move {
            answer(
                client()
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await
        }
    };
    let (status, _, granted) = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", query["code"].clone()),
        ("redirect_uri", redirect.into()),
        ("client_id", client_id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["api_domain"], fake.origin());
    assert!(granted["refresh_token"].is_string(), "access_type=offline");
    let access = text(&granted["access_token"]);
    let (status, _, _) = answer(
        client()
            .get(format!("{}/crm/v2/Contacts?per_page=1", fake.base_url()))
            .header("Authorization", format!("Zoho-oauthtoken {access}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, refused) = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", query["code"].clone()),
        ("redirect_uri", redirect.into()),
        ("client_id", client_id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "Zoho refuses with a 200");
    assert_eq!(refused, json!({"error": "invalid_code"}));
    let (status, _, refreshed) = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", text(&granted["refresh_token"])),
        ("client_id", client_id),
        ("client_secret", secret),
    ])
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(refreshed["access_token"].is_string() && refreshed.get("refresh_token").is_none());
}

// ---------------------------------------------------- Samsara, KeepTruckin

#[tokio::test]
async fn samsara_cursors_walk_every_vehicle_and_hos_logs_filter_by_time() {
    let fake = FakeProvider::start(Kind::Samsara).await;
    fake.set_count("vehicles", 1100);
    let http = client();
    let mut seen = Vec::new();
    let mut url = format!("{}/fleet/vehicles/locations", fake.base_url());
    let mut pages = 0;
    loop {
        let (status, _, page) = answer(http.get(&url).bearer_auth(DEFAULT_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        seen.extend(ids(page["data"].as_array().unwrap(), "id"));
        if page["pagination"]["hasNextPage"] == false {
            assert_eq!(page["pagination"]["endCursor"], "");
            break;
        }
        url = format!(
            "{}/fleet/vehicles/locations?after={}",
            fake.base_url(),
            text(&page["pagination"]["endCursor"])
        );
    }
    assert_eq!(pages, 3, "512 a page");
    assert_each_once(&seen, 1100);

    fake.set_count("hos_logs", 100);
    let since = fake.now();
    let touched = fake.touch("hos_logs", [4]);
    let url = format!(
        "{}/fleet/hos/logs?startTime={}",
        fake.base_url(),
        url::form_urlencoded::byte_serialize(since.to_rfc3339().as_bytes()).collect::<String>()
    );
    let (status, _, page) = answer(http.get(url).bearer_auth(DEFAULT_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(text(&data[0]["driver"]["id"]), touched[0]);
    assert!(!data[0]["hosLogs"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn keeptruckin_pages_with_page_no_and_takes_a_key_or_a_bearer_token() {
    let fake = FakeProvider::start(Kind::KeepTruckin).await;
    fake.set_count("vehicle_locations", 250);
    let http = client();
    let mut seen = Vec::new();
    for page_no in 1.. {
        let url = format!(
            "{}/vehicle_locations?per_page=100&page_no={page_no}",
            fake.base_url()
        );
        let (status, _, page) = answer(http.get(url).header("X-Api-Key", DEFAULT_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["pagination"]["total"], 250);
        let vehicles = page["vehicles"].as_array().unwrap();
        if vehicles.is_empty() {
            break;
        }
        for v in vehicles {
            let loc = &v["vehicle"]["current_location"];
            assert!(loc["lat"].is_f64() && text(&loc["located_at"]).ends_with('Z'));
            seen.push(v["vehicle"]["id"].to_string());
        }
    }
    assert_each_once(&seen, 250);
    let (status, _, logs) = answer(
        http.get(format!("{}/hos_logs?per_page=5", fake.base_url()))
            .bearer_auth(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logs["hos_logs"].as_array().unwrap().len(), 5);
    assert!(logs["hos_logs"][0]["hos_log"]["status"].is_string());
    let (status, _, body) = answer(
        http.get(format!("{}/vehicle_locations", fake.base_url()))
            .header("X-Api-Key", "wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error_message"].is_string());
}

// ------------------------------------------------------------ Alpha Vantage

#[tokio::test]
async fn alpha_vantage_serves_daily_series_as_json_or_csv_and_throttles_with_a_200() {
    let fake = FakeProvider::start(Kind::AlphaVantage).await;
    fake.set_count("TIME_SERIES_DAILY", 300);
    let url = |extra: &str| {
        format!(
            "{}/query?function=TIME_SERIES_DAILY&symbol=IBM&apikey={DEFAULT_TOKEN}{extra}",
            fake.base_url()
        )
    };
    let (status, _, compact) = answer(client().get(url(""))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(compact["Meta Data"]["2. Symbol"], "IBM");
    let series = compact["Time Series (Daily)"].as_object().unwrap();
    assert_eq!(series.len(), 100);
    assert_eq!(compact["Meta Data"]["3. Last Refreshed"], "2024-06-28");
    assert!(series["2024-06-28"]["4. close"].is_string());
    let (_, _, full) = answer(client().get(url("&outputsize=full"))).await;
    assert_eq!(full["Time Series (Daily)"].as_object().unwrap().len(), 300);
    let (_, headers, csv) = answer(client().get(url("&datatype=csv"))).await;
    let csv = text(&csv);
    assert!(csv.starts_with("timestamp,open,high,low,close,volume\r\n2024-06-28,"));
    assert_eq!(csv.lines().count(), 101);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .contains("download")
    );

    let (status, _, bad) = answer(client().get(url("").replace(DEFAULT_TOKEN, "nope"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bad["Error Message"].is_string());
    fake.set_mode_for(
        1,
        hub_testkit::fakes::Mode::RateLimited {
            retry_after_secs: 60,
        },
    );
    let (status, headers, note) = answer(client().get(url(""))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(note["Note"].is_string() && headers.get("retry-after").is_none());
    fake.set_mode_for(
        1,
        hub_testkit::fakes::Mode::RateLimited {
            retry_after_secs: 86_400,
        },
    );
    let (_, _, info) = answer(client().get(url(""))).await;
    assert!(info["Information"].is_string(), "{info}");
}

// -------------------------------------------------------------------- speed

/// Serving pages of 100 HubSpot contacts out of 200,000 with recording
/// off: checks every record comes once, and prints the rate (the
/// assertion is on correctness only; the number is for the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_serves_200_000_contacts_in_pages_of_100_fast() {
    let fake = FakeProvider::start(Kind::HubSpot).await;
    fake.set_recording(false);
    fake.set_count("contacts", 200_000);
    let http = client();
    let started = Instant::now();
    let mut seen = 0_u64;
    let mut last = 0_u64;
    let mut after: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/crm/v3/objects/contacts?limit=100&properties=email,firstname,lastname",
            fake.base_url()
        );
        if let Some(a) = &after {
            url.push_str("&after=");
            url.push_str(a);
        }
        let body: Value = http
            .get(url)
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for r in body["results"].as_array().unwrap() {
            let id: u64 = text(&r["id"]).parse().unwrap();
            assert_eq!(id, last + 1, "in order, none skipped");
            last = id;
            seen += 1;
        }
        match body["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(seen, 200_000);
    println!(
        "hubspot list: {seen} contacts in {:.2} s = {:.0} records/s (pages of 100, one client, recording off)",
        elapsed.as_secs_f64(),
        seen as f64 / elapsed.as_secs_f64()
    );
}

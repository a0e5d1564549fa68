//! Each shipped manifest's `sync` section: the request it builds, how it
//! reads a real answer (shapes from the providers' documentation), and the
//! checkpoint of the next page.

use chrono::{TimeZone, Utc};
use hub_connectors::sync::EntitySync;
use serde_json::{Value, json};

/// The sync section of `entity` in provider `code`'s manifest.
fn entity(code: &str, entity: &str) -> EntitySync {
    let m = crate::provider(code);
    m.sync
        .as_ref()
        .and_then(|s| s.entities.get(entity))
        .unwrap_or_else(|| panic!("{code} syncs {entity}"))
        .clone()
}

fn since() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap()
}

/// The query parameter `name` of a path and query, decoded.
fn param(path_and_query: &str, name: &str) -> Option<String> {
    let (_, q) = path_and_query.split_once('?')?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn every_synced_entity_names_a_hub_entity_a_template_and_a_record_schema() {
    let mut seen = 0;
    for m in hub_connectors::catalog().unwrap() {
        for (name, e) in m.sync.iter().flat_map(|s| &s.entities) {
            seen += 1;
            assert!(e.entity.starts_with("c_"), "{} {name}", m.code);
            assert!(!e.template.is_empty(), "{} {name}", m.code);
            assert!(e.record_schema.is_some(), "{} {name}", m.code);
            assert_eq!(e.check(), Ok(()), "{} {name}", m.code);
        }
    }
    // HubSpot 3, Salesforce 3, Zoho 3, QuickBooks 3, Xero 3, Samsara 2,
    // KeepTruckin 2, NewsAPI 1, Alpha Vantage 1.
    assert_eq!(seen, 21);
}

#[test]
fn salesforce_queries_by_soql_and_follows_next_records_url() {
    let s = entity("SALESFORCE", "Opportunity");
    let r = s.request(&json!({}), None, None).unwrap();
    assert!(
        r.path_and_query
            .starts_with("/services/data/v60.0/query?q=")
    );
    let q = param(&r.path_and_query, "q").unwrap();
    assert!(
        q.starts_with("SELECT Id, Name, Amount") && q.ends_with("FROM Opportunity ORDER BY Id"),
        "{q}"
    );
    let inc = s.request(&json!({}), None, Some(since())).unwrap();
    let q = param(&inc.path_and_query, "q").unwrap();
    assert!(
        q.ends_with("WHERE SystemModstamp > 2024-01-15T10:30:00Z ORDER BY SystemModstamp"),
        "{q}"
    );
    let answer = json!({
        "totalSize": 4200, "done": false,
        "nextRecordsUrl": "/services/data/v60.0/query/01gD0000002HU6KIAW-2000",
        "records": [{"attributes": {"type": "Opportunity", "url": "/services/data/v60.0/sobjects/Opportunity/006D000000IRFmaIAH"},
                     "Id": "006D000000IRFmaIAH", "Name": "Lane contract", "Amount": 1500.0,
                     "LastModifiedDate": "2024-01-15T10:30:00.000+0000", "SystemModstamp": "2024-01-15T10:30:00.000+0000"}]
    });
    let page = s.read(&answer, None).unwrap();
    assert_eq!(page.total, Some(4200));
    assert_eq!(
        s.id_of(&page.records[0]).as_deref(),
        Some("006D000000IRFmaIAH")
    );
    assert_eq!(s.updated_at_of(&page.records[0]), Some(since()));
    let next = s.request(&json!({}), page.next.as_ref(), None).unwrap();
    assert_eq!(
        next.path_and_query,
        "/services/data/v60.0/query/01gD0000002HU6KIAW-2000"
    );
    let last = s
        .read(
            &json!({"totalSize": 4200, "done": true, "records": []}),
            page.next.as_ref(),
        )
        .unwrap();
    assert_eq!(last.next, None);
}

#[test]
fn zoho_pages_until_more_records_is_false_and_asks_if_modified_since() {
    let s = entity("ZOHO", "Deals");
    let r = s.request(&json!({}), None, None).unwrap();
    assert!(
        r.path_and_query.starts_with("/crm/v2/Deals?"),
        "{}",
        r.path_and_query
    );
    assert_eq!(param(&r.path_and_query, "page").as_deref(), Some("1"));
    assert_eq!(param(&r.path_and_query, "per_page").as_deref(), Some("200"));
    assert!(r.headers.is_empty(), "a full read asks for everything");
    let inc = s
        .request(&json!({}), Some(&json!({"page": 3})), Some(since()))
        .unwrap();
    assert_eq!(param(&inc.path_and_query, "page").as_deref(), Some("3"));
    assert_eq!(
        inc.headers,
        vec![(
            "If-Modified-Since".to_owned(),
            "2024-01-15T10:30:00Z".to_owned()
        )]
    );
    let answer = json!({
        "data": [{"id": "3652397000000624046", "Deal_Name": "Lane contract", "Modified_Time": "2024-01-15T16:00:00+05:30"}],
        "info": {"per_page": 200, "count": 1, "page": 1, "more_records": true}
    });
    let page = s.read(&answer, None).unwrap();
    assert_eq!(page.next, Some(json!({"page": 2})));
    assert_eq!(s.updated_at_of(&page.records[0]), Some(since()));
    let mut last = answer.clone();
    last["info"]["more_records"] = json!(false);
    assert_eq!(s.read(&last, page.next.as_ref()).unwrap().next, None);
    // 204 or 304: no body at all.
    assert_eq!(s.read(&Value::Null, None).unwrap().records.len(), 0);
}

#[test]
fn quickbooks_queries_by_position_in_the_realm_from_the_config() {
    let s = entity("QUICKBOOKS", "Invoice");
    let config = json!({"realm_id": "9130357766900456"});
    let r = s.request(&config, None, None).unwrap();
    assert!(
        r.path_and_query
            .starts_with("/v3/company/9130357766900456/query?"),
        "{}",
        r.path_and_query
    );
    assert_eq!(
        param(&r.path_and_query, "query").as_deref(),
        Some("select * from Invoice orderby Id STARTPOSITION 1 MAXRESULTS 1000")
    );
    let inc = s
        .request(&config, Some(&json!({"offset": 1001})), Some(since()))
        .unwrap();
    assert_eq!(
        param(&inc.path_and_query, "query").as_deref(),
        Some(
            "select * from Invoice where Metadata.LastUpdatedTime > '2024-01-15T10:30:00Z' orderby Metadata.LastUpdatedTime STARTPOSITION 1001 MAXRESULTS 1000"
        )
    );
    let missing = s.request(&json!({}), None, None).unwrap_err();
    assert!(missing.contains("config.realm_id"), "{missing}");

    let record = json!({"Id": "130", "SyncToken": "0", "TotalAmt": 1323.19,
                        "MetaData": {"CreateTime": "2024-01-15T02:30:00-08:00", "LastUpdatedTime": "2024-01-15T02:30:00-08:00"}});
    let full: Vec<Value> = vec![record.clone(); 1000];
    let page = s
        .read(&json!({"QueryResponse": {"Invoice": full, "startPosition": 1, "maxResults": 1000}, "time": "2024-01-15T02:31:00.000-08:00"}), None)
        .unwrap();
    assert_eq!(page.next, Some(json!({"offset": 1001})));
    assert_eq!(s.updated_at_of(&record), Some(since()));
    // Nothing left: QuickBooks drops the entity key.
    let end = s
        .read(
            &json!({"QueryResponse": {}, "time": "…"}),
            page.next.as_ref(),
        )
        .unwrap();
    assert_eq!((end.records.len(), end.next), (0, None));
}

#[test]
fn xero_pages_until_the_item_count_and_reads_its_dates() {
    let s = entity("XERO", "Invoices");
    let r = s.request(&json!({}), None, None).unwrap();
    assert_eq!(param(&r.path_and_query, "page").as_deref(), Some("1"));
    assert_eq!(
        param(&r.path_and_query, "pageSize").as_deref(),
        Some("1000")
    );
    let inc = s.request(&json!({}), None, Some(since())).unwrap();
    assert_eq!(
        param(&inc.path_and_query, "order").as_deref(),
        Some("UpdatedDateUTC ASC")
    );
    assert_eq!(inc.headers[0].0, "If-Modified-Since");
    let invoice = json!({"InvoiceID": "243216c5-369e-4056-ac67-05388f86dc81", "Type": "ACCREC",
                         "UpdatedDateUTC": "/Date(1705314600000+0000)/"});
    let answer = json!({"Id": "x", "Status": "OK", "Invoices": vec![invoice.clone(); 1000],
                        "pagination": {"page": 1, "pageSize": 1000, "pageCount": 2, "itemCount": 1500}});
    let page = s.read(&answer, None).unwrap();
    assert_eq!(
        (page.next.clone(), page.total),
        (Some(json!({"page": 2})), Some(1500))
    );
    assert_eq!(s.updated_at_of(&invoice), Some(since()));
    let mut second = answer.clone();
    second["Invoices"] = json!(vec![invoice.clone(); 500]);
    assert_eq!(s.read(&second, page.next.as_ref()).unwrap().next, None);
}

#[test]
fn samsara_follows_the_end_cursor_and_dates_hos_days_by_their_last_log() {
    let s = entity("SAMSARA", "vehicle_locations");
    let answer = json!({
        "data": [{"id": "212014918086161", "name": "Truck 01",
                  "location": {"time": "2024-01-15T10:30:00Z", "latitude": 39.637, "longitude": -119.589, "speed": 56.0}}],
        "pagination": {"endCursor": "YWZ0ZXI6NTEy", "hasNextPage": true}
    });
    let page = s.read(&answer, None).unwrap();
    assert_eq!(page.next, Some(json!({"cursor": "YWZ0ZXI6NTEy"})));
    assert_eq!(s.updated_at_of(&page.records[0]), Some(since()));
    let r = s.request(&json!({}), page.next.as_ref(), None).unwrap();
    assert_eq!(
        r.path_and_query,
        "/fleet/vehicles/locations?limit=512&after=YWZ0ZXI6NTEy"
    );
    let last = s
        .read(
            &json!({"data": [], "pagination": {"endCursor": "", "hasNextPage": false}}),
            None,
        )
        .unwrap();
    assert_eq!(last.next, None);

    let hos = entity("SAMSARA", "hos_logs");
    let day = json!({"driver": {"id": "53001", "name": "Driver 1"}, "hosLogs": [
        {"hosStatusType": "onDuty", "logStartTime": "2024-01-15T01:00:00Z", "logEndTime": "2024-01-15T02:00:00Z"},
        {"hosStatusType": "driving", "logStartTime": "2024-01-15T02:00:00Z", "logEndTime": "2024-01-15T10:30:00Z"}]});
    assert_eq!(hos.id_of(&day).as_deref(), Some("53001"));
    assert_eq!(hos.updated_at_of(&day), Some(since()));
}

#[test]
fn keeptruckin_pages_by_page_no_until_the_total() {
    let s = entity("KEEPTRUCKIN", "vehicle_locations");
    let r = s
        .request(&json!({}), Some(&json!({"page": 2})), None)
        .unwrap();
    assert_eq!(
        r.path_and_query,
        "/vehicle_locations?per_page=100&page_no=2"
    );
    let v = json!({"vehicle": {"id": 80001, "number": "Truck 01",
        "current_location": {"lat": 36.2, "lon": -115.0, "located_at": "2024-01-15T10:30:00Z"}}});
    let answer = json!({"vehicles": vec![v.clone(); 100],
                        "pagination": {"per_page": 100, "page_no": 2, "total": 250}});
    let page = s.read(&answer, Some(&json!({"page": 2}))).unwrap();
    assert_eq!(page.next, Some(json!({"page": 3})));
    assert_eq!(s.id_of(&v).as_deref(), Some("80001"));
    assert_eq!(s.updated_at_of(&v), Some(since()));
    // 300 would be read after page 3: the total says 250, so it is the last
    // even when full.
    let mut third = answer.clone();
    third["pagination"]["page_no"] = json!(3);
    assert_eq!(s.read(&third, page.next.as_ref()).unwrap().next, None);
}

#[test]
fn newsapi_searches_the_configured_query_and_keys_articles_by_url() {
    let s = entity("NEWSAPI", "articles");
    let r = s
        .request(
            &json!({"query": "freight OR trucking"}),
            None,
            Some(since()),
        )
        .unwrap();
    assert_eq!(
        param(&r.path_and_query, "q").as_deref(),
        Some("freight OR trucking")
    );
    assert_eq!(
        param(&r.path_and_query, "from").as_deref(),
        Some("2024-01-15T10:30:00Z")
    );
    assert_eq!(param(&r.path_and_query, "pageSize").as_deref(), Some("100"));
    let err = s.request(&json!({}), None, None).unwrap_err();
    assert!(err.contains("config.query"), "{err}");
    let article = json!({"source": {"id": "reuters", "name": "Reuters"}, "author": "A",
        "title": "Spot rates", "url": "https://www.reuters.com/a/1", "publishedAt": "2024-01-15T10:30:00Z"});
    let page = s
        .read(
            &json!({"status": "ok", "totalResults": 100, "articles": vec![article.clone(); 100]}),
            None,
        )
        .unwrap();
    assert_eq!(page.next, None, "100 of 100 read");
    assert_eq!(
        s.id_of(&article).as_deref(),
        Some("https://www.reuters.com/a/1")
    );
}

#[test]
fn alpha_vantage_reads_the_daily_series_entries_as_records() {
    let s = entity("ALPHA_VANTAGE", "TIME_SERIES_DAILY");
    let r = s.request(&json!({"symbol": "IBM"}), None, None).unwrap();
    assert_eq!(
        r.path_and_query,
        "/query?function=TIME_SERIES_DAILY&outputsize=full&symbol=IBM"
    );
    let inc = s
        .request(&json!({"symbol": "IBM"}), None, Some(since()))
        .unwrap();
    assert_eq!(
        param(&inc.path_and_query, "outputsize").as_deref(),
        Some("compact")
    );
    let answer = json!({
        "Meta Data": {"1. Information": "Daily Prices (open, high, low, close) and Volumes", "2. Symbol": "IBM"},
        "Time Series (Daily)": {
            "2024-01-15": {"1. open": "161.0000", "2. high": "162.1000", "3. low": "160.0000", "4. close": "161.5000", "5. volume": "3910000"},
            "2024-01-12": {"1. open": "160.0000", "2. high": "161.0000", "3. low": "159.5000", "4. close": "160.2000", "5. volume": "4120000"}
        }
    });
    let page = s.read(&answer, None).unwrap();
    assert_eq!((page.records.len(), page.next), (2, None));
    let day = page
        .records
        .iter()
        .find(|r| r["date"] == "2024-01-15")
        .unwrap();
    assert_eq!(day["4. close"], "161.5000");
    assert_eq!(s.id_of(day).as_deref(), Some("2024-01-15"));
    assert_eq!(
        s.updated_at_of(day),
        Some(Utc.with_ymd_and_hms(2024, 1, 15, 0, 0, 0).unwrap())
    );
    // Throttled: a Note and no series, which the gateway retries; read
    // alone it is an empty page, not an error.
    assert_eq!(
        s.read(&json!({"Note": "Thank you for using Alpha Vantage!"}), None)
            .unwrap()
            .records
            .len(),
        0
    );
}

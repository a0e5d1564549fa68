//! Transformation templates (issue 28): CRUD and versions, system templates
//! (read-only, copyable, previewed with realistic provider payloads), tenant
//! isolation, rule errors at their rule paths, preview and validate.

use crate::started;
use hub_testkit::{Running, TenantApi, TestEnv, eventually};
use serde_json::{Value, json};

const X12_204: &str = include_str!("../../../hub-transform/tests/vectors/x12/204_load_tender.edi");
const X12_214: &str =
    include_str!("../../../hub-transform/tests/vectors/x12/214_shipment_status.edi");

async fn tenant(env: &TestEnv, m: &Running, slug: &str) -> TenantApi {
    let (tenant, key) = env.tenant(m, slug).await;
    TenantApi::new(env, m, &tenant, &key)
}

/// The system template `code`, as listed to `api`.
async fn system(api: &TenantApi, code: &str) -> Value {
    let page = api
        .get("/api/v1/transformations?is_system=true&limit=200")
        .await;
    page.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == code)
        .unwrap_or_else(|| panic!("no system template {code} in {}", page.text))
        .clone()
}

fn opportunity_rules() -> Value {
    json!({"rules": [
        {"target": "external_id", "source": "Id", "required": true},
        {"target": "amount", "source": "Amount", "type": "number"}
    ]})
}

#[tokio::test]
async fn put_makes_a_new_version_and_keeps_the_old_readable() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-crud").await;
    let v1 = api
        .post(
            "/api/v1/transformations",
            json!({"code": "sf_opp", "name": "Opportunities", "source_format": "json",
                   "target_format": "JSON", "mapping_rules": opportunity_rules(), "category": "CRM"}),
        )
        .await;
    let v1 = v1.ok(201).clone();
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["is_active"], true);
    assert_eq!(v1["is_system"], false);
    assert_eq!(v1["source_format"], "JSON");
    let id1 = v1["id"].as_str().unwrap().to_owned();

    let v2 = api
        .put(
            &format!("/api/v1/transformations/{id1}"),
            json!({"name": "Opportunities v2", "validation_rules": {"type": "object", "required": ["external_id"]}}),
        )
        .await;
    let v2 = v2.ok(200).clone();
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["is_active"], true);
    assert_eq!(v2["code"], "sf_opp");
    assert_eq!(v2["mapping_rules"], opportunity_rules(), "kept");
    let id2 = v2["id"].as_str().unwrap().to_owned();
    assert_ne!(id1, id2);

    let old = api.get(&format!("/api/v1/transformations/{id1}")).await;
    assert_eq!(old.ok(200)["name"], "Opportunities");
    assert_eq!(old.body["is_active"], false);
    let pinned = api
        .get(&format!("/api/v1/transformations/{id2}?version=1"))
        .await;
    assert_eq!(pinned.ok(200)["id"], id1.as_str());
    let missing = api
        .get(&format!("/api/v1/transformations/{id2}?version=9"))
        .await;
    missing.problem(404, "not_found");

    // The list shows the active version only.
    let mine = api
        .get("/api/v1/transformations?is_system=false&category=CRM")
        .await;
    let data = mine.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1, "{}", mine.text);
    assert_eq!(data[0]["id"], id2.as_str());

    // The same code again is a conflict.
    let again = api
        .post(
            "/api/v1/transformations",
            json!({"code": "sf_opp", "name": "x", "source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": opportunity_rules()}),
        )
        .await;
    again.problem(409, "conflict");

    api.delete(&format!("/api/v1/transformations/{id2}"))
        .await
        .ok(204);
    api.get(&format!("/api/v1/transformations/{id1}"))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn system_templates_are_read_only_and_copyable() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-sys").await;
    let sys = system(&api, "xero_invoice_to_invoice").await;
    assert_eq!(sys["is_system"], true);
    let id = sys["id"].as_str().unwrap();
    let put = api
        .put(
            &format!("/api/v1/transformations/{id}"),
            json!({"name": "mine"}),
        )
        .await;
    let p = put.problem(409, "conflict");
    assert!(
        p["detail"].as_str().unwrap().contains("/copy"),
        "names the copy route: {}",
        put.text
    );
    api.delete(&format!("/api/v1/transformations/{id}"))
        .await
        .problem(409, "conflict");

    let copy = api
        .post(
            &format!("/api/v1/transformations/{id}/copy"),
            json!({"name": "Our Xero invoices"}),
        )
        .await;
    let copy = copy.ok(201).clone();
    assert_eq!(copy["is_system"], false);
    assert_eq!(copy["code"], "xero_invoice_to_invoice");
    assert_eq!(copy["name"], "Our Xero invoices");
    assert_eq!(copy["mapping_rules"], sys["mapping_rules"]);
    let copy_id = copy["id"].as_str().unwrap();
    let v2 = api
        .put(
            &format!("/api/v1/transformations/{copy_id}"),
            json!({"category": "AR"}),
        )
        .await;
    assert_eq!(v2.ok(200)["version"], 2);
}

#[tokio::test]
async fn another_tenants_template_is_a_404() {
    let (env, m) = started().await;
    let a = tenant(&env, &m, "tpl-a").await;
    let b = tenant(&env, &m, "tpl-b").await;
    let created = a
        .post(
            "/api/v1/transformations",
            json!({"code": "mine", "name": "Mine", "source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": opportunity_rules()}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/transformations/{id}");
    b.get(&path).await.problem(404, "not_found");
    b.put(&path, json!({"name": "theirs"}))
        .await
        .problem(404, "not_found");
    b.delete(&path).await.problem(404, "not_found");
    b.post(&format!("{path}/copy"), json!({}))
        .await
        .problem(404, "not_found");
    let preview = b
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": id, "input": "{}"}),
        )
        .await;
    preview.problem(404, "not_found");
    let both = a
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": id, "mapping_rules": opportunity_rules(), "input": "{}"}),
        )
        .await;
    both.problem(422, "validation_failed");
    assert!(both.fields().contains("template_id"), "{}", both.text);
    let listed = b.get("/api/v1/transformations?is_system=false").await;
    assert_eq!(listed.ok(200)["data"], json!([]), "{}", listed.text);
    a.get(&path).await.ok(200);
}

#[tokio::test]
async fn bad_rules_are_a_422_naming_each_rule_path() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-bad").await;
    let r = api
        .post(
            "/api/v1/transformations",
            json!({"code": "bad", "name": "Bad", "source_format": "EDIFACT", "target_format": "CSV",
            "target_options": {"delimiter": ";", "colour": "red"},
            "validation_rules": {"type": "no-such-type"},
            "mapping_rules": {"rules": [
                {"target": "a", "source": "A"},
                {"target": "b", "expr": "nosuch(B)"},
                {"target": "c", "source": "C", "steps": ["frobnicate"]}
            ]}}),
        )
        .await;
    r.problem(422, "validation_failed");
    let fields = r.fields();
    for f in [
        "source_format",
        "target_options",
        "validation_rules",
        "mapping_rules.rules[1].expr",
        "mapping_rules.rules[2].steps[0]",
    ] {
        assert!(fields.contains(f), "{f} in {fields:?}: {}", r.text);
    }
    assert!(!fields.iter().any(|f| f.contains("rules[0]")), "{fields:?}");
}

#[tokio::test]
async fn system_x12_204_previews_as_a_load() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-204").await;
    let sys = system(&api, "x12_204_to_load").await;
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": X12_204}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let load = &out["output_tree"];
    assert_eq!(load["external_id"], "LOAD-7788");
    assert_eq!(load["carrier_scac"], "ABCD");
    assert_eq!(load["payment_method"], "prepaid");
    assert_eq!(
        load["references"],
        json!([{"qualifier": "PO", "value": "PO-5566"}])
    );
    assert_eq!(load["stops"][0]["type"], "pickup");
    assert_eq!(load["stops"][0]["address"]["city"], "CHICAGO");
    assert_eq!(load["stops"][0]["appointment_date"], "2023-11-23");
    assert_eq!(load["stops"][1]["type"], "delivery");
    assert_eq!(load["stops"][1]["facility"]["name"], "BETA RETAIL");
    assert_eq!(load["stops"][1]["weight_kg"], 5443.1);
    assert_eq!(load["rate"], 2450.0);
    let text: Value = serde_json::from_str(out["output"].as_str().unwrap()).unwrap();
    assert_eq!(&text, load, "output is the tree written as JSON");
    let trace = out["trace"].as_array().unwrap();
    assert!(trace.iter().any(|s| s["target"] == "external_id"
        && s["wrote"] == "LOAD-7788"
        && s["read"][0]["path"] == "groups[0].sets[0].B2.B204_shipment_id"));
}

#[tokio::test]
async fn system_x12_214_previews_as_a_shipment_status_event() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-214").await;
    let sys = system(&api, "x12_214_to_shipment_status").await;
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": X12_214}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let event = &out["output_tree"];
    assert_eq!(event["pro_number"], "PRO12345");
    assert_eq!(event["shipment_id"], "BOL98765");
    assert_eq!(event["carrier_scac"], "ABCD");
    assert_eq!(event["status"], "at_delivery");
    assert_eq!(event["status_date"], "2023-11-22");
    assert_eq!(
        event["references"],
        json!([{"qualifier": "PO", "value": "PO-5566"}])
    );
    assert_eq!(event["parties"][0]["role"], "shipper");
    assert_eq!(event["parties"][1]["role"], "consignee");
    assert_eq!(event["parties"][1]["address"]["city"], "DALLAS");
    let first = &event["events"][0];
    assert_eq!(first["status_code"], "X1");
    assert_eq!(first["time"], "1430");
    assert_eq!(first["time_code"], "CT");
    assert_eq!(
        first["location"],
        json!({"city": "DALLAS", "state": "TX", "country": "US"})
    );
    assert_eq!(first["equipment"]["number"], "TRL778");
    assert_eq!(event["weight_lb"], 12000);
    assert_eq!(event["quantity"], 10);
}

#[tokio::test]
async fn system_load_previews_as_an_x12_990() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-990").await;
    let sys = system(&api, "load_to_x12_990").await;
    let load = json!({
        "external_id": "LOAD-7788", "carrier_scac": "ABCD", "tender_response": "accepted",
        "responded_at": "2023-11-22T12:00:00Z", "pro_number": "PRO12345",
        "edi": {"sender_id": "SHIPPERCO", "receiver_id": "CARRIERCO", "control_number": 101}
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": load.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let expected = include_str!("../../../hub-transform/tests/vectors/x12/990_tender_response.edi");
    assert_eq!(out["output"], expected, "{}", r.text);

    // A declined tender without the EDI ids fails the input schema: 200 with errors.
    let bad = json!({"external_id": "L1", "carrier_scac": "ABCD", "tender_response": "maybe",
                     "responded_at": "2023-11-22T12:00:00Z"});
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": bad.to_string()}),
        )
        .await;
    let out = r.ok(200);
    let errors = out["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["stage"] == "input"), "{}", r.text);
    assert!(errors.iter().any(|e| e["stage"] == "mapping"), "{}", r.text);
    assert_eq!(out["output"], Value::Null);
}

#[tokio::test]
async fn system_invoice_previews_as_an_x12_210() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-210").await;
    let sys = system(&api, "invoice_to_x12_210").await;
    let invoice = json!({
        "external_id": "inv_01HF", "number": "INV-4411", "type": "receivable", "status": "open",
        "shipment_id": "BOL98765", "carrier_scac": "ABCD", "payment_method": "prepaid",
        "issue_date": "2023-11-25", "delivery_date": "2023-11-24", "currency": "USD",
        "subtotal": 2450.0, "tax": 0, "total": 2450.0, "amount_due": 2450.0, "weight_lb": 12000,
        "shipper": {"name": "ACME SHIPPING"}, "consignee": {"name": "BETA RETAIL"},
        "lines": [{"line_number": 1, "description": "DRY VAN LOAD", "quantity": 10, "packaging": "PLT",
                   "weight_lb": 12000, "rate": 2450, "rate_qualifier": "FR", "amount": 2450.0}],
        "edi": {"sender_id": "SHIPPERCO", "receiver_id": "CARRIERCO", "control_number": 101,
                "sent_at": "2023-11-22T12:00:00Z"}
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": invoice.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let expected = include_str!("../../../hub-transform/tests/vectors/x12/210_freight_invoice.edi");
    assert_eq!(out["output"], expected, "{}", r.text);

    // Two lines with cents: one LX loop each, amounts in cents.
    let mut two = invoice.clone();
    two["total"] = json!(2612.75);
    two["amount_due"] = json!(2612.75);
    two["lines"] = json!([
        {"line_number": 1, "description": "LINEHAUL", "rate": 2.15, "rate_qualifier": "PM", "amount": 2450.0},
        {"line_number": 2, "description": "FUEL SURCHARGE", "amount": 162.75}
    ]);
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": two.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let text = out["output"].as_str().unwrap();
    assert!(
        text.contains("B3**INV-4411*BOL98765*PP**20231125*261275**20231124*035*ABCD~"),
        "{text}"
    );
    assert!(
        text.contains("LX*1~\nL5*1*LINEHAUL~\nL0*1~\nL1*1*2.15*PM*245000~\n"),
        "{text}"
    );
    assert!(
        text.contains("LX*2~\nL5*2*FUEL SURCHARGE~\nL0*2~\nL1*2***16275~\n"),
        "{text}"
    );
    assert!(text.contains("L3*12000*G***261275~"), "{text}");

    // Without the EDI ids or a consignee, the input schema says so: 200 with errors.
    let bad = json!({"number": "INV-1", "shipment_id": "B1", "carrier_scac": "ABCD", "issue_date": "2023-11-25",
                     "total": 10, "shipper": {"name": "A"}, "lines": [{"line_number": 1, "amount": 10}]});
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": bad.to_string()}),
        )
        .await;
    let out = r.ok(200);
    let errors = out["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["stage"] == "input"), "{}", r.text);
    assert_eq!(out["output"], Value::Null, "{}", r.text);
}

#[tokio::test]
async fn system_salesforce_opportunity_previews_as_c_opportunity() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-sf").await;
    let sys = system(&api, "salesforce_opportunity_to_c_opportunity").await;
    let record = json!({
        "attributes": {"type": "Opportunity", "url": "/services/data/v60.0/sobjects/Opportunity/0065g00000AbCdEAAV"},
        "Id": "0065g00000AbCdEAAV", "Name": " Acme Freight – Q3 lanes ", "Amount": 125000.0,
        "StageName": "Closed Won", "CloseDate": "2024-09-30", "Probability": 100,
        "AccountId": "0015g00000XyZabAAB", "OwnerId": "0055g00000QrStuAAC",
        "LastModifiedDate": "2024-10-01T14:05:00.000+0000"
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": record.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    assert_eq!(
        out["output_tree"],
        json!({"external_id": "0065g00000AbCdEAAV", "name": "Acme Freight – Q3 lanes", "amount": 125000.0,
               "stage": "Closed Won", "status": "won", "close_date": "2024-09-30", "probability": 100,
               "expected_revenue": 125000.0, "account_external_id": "0015g00000XyZabAAB",
               "owner_external_id": "0055g00000QrStuAAC", "source_updated_at": "2024-10-01T14:05:00Z",
               "source": "salesforce"}),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn system_hubspot_deal_previews_as_c_opportunity() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-hs-deal").await;
    let sys = system(&api, "hubspot_deal_to_c_opportunity").await;
    let deal = json!({
        "id": "14772390512",
        "properties": {"dealname": " Acme Freight – Q3 lanes ", "amount": "125000", "dealstage": "contractsent",
                       "closedate": "2024-09-30T00:00:00Z", "hs_deal_stage_probability": "0.9",
                       "pipeline": "default", "hubspot_owner_id": "501", "hs_object_id": "14772390512",
                       "hs_lastmodifieddate": "2024-10-01T14:05:00.123Z", "createdate": "2024-06-03T08:00:00Z"},
        "associations": {"companies": {"results": [{"id": "9001", "type": "deal_to_company"}]}},
        "createdAt": "2024-06-03T08:00:00Z", "updatedAt": "2024-10-01T14:05:00.123Z", "archived": false
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": deal.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    assert_eq!(
        out["output_tree"],
        json!({"external_id": "14772390512", "name": "Acme Freight – Q3 lanes", "amount": 125000,
               "stage": "contractsent", "status": "open", "close_date": "2024-09-30", "probability": 90,
               "expected_revenue": 112500.0, "account_external_id": "9001", "owner_external_id": "501",
               "pipeline": "default", "source_updated_at": "2024-10-01T14:05:00.123Z", "source": "hubspot"}),
        "{}",
        r.text
    );

    // Won, with no probability or company: the rest still maps.
    let won = json!({"id": "2", "properties": {"dealname": "Spot load", "amount": "900.50",
                     "dealstage": "closedwon", "closedate": "1727654400000"}});
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": won.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let opp = &out["output_tree"];
    assert_eq!(opp["status"], "won");
    assert_eq!(opp["amount"], 900.5);
    assert_eq!(opp["close_date"], "2024-09-30");
    assert!(opp.get("probability").is_none(), "{}", r.text);
}

#[tokio::test]
async fn system_zoho_deal_previews_as_c_opportunity() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-zoho-deal").await;
    let sys = system(&api, "zoho_deal_to_c_opportunity").await;
    let deal = json!({
        "id": "4150868000001234567", "Deal_Name": "Acme Freight – Q3 lanes", "Amount": 125000,
        "Stage": "Closed-Lost to Competition", "Closing_Date": "2024-09-30", "Probability": 0,
        "Expected_Revenue": 0, "Type": "New Business", "Lead_Source": "Trade Show",
        "Account_Name": {"name": "Acme Freight", "id": "4150868000000987654"},
        "Owner": {"name": "Pat Lee", "id": "4150868000000225013", "email": "pat@example.com"},
        "Created_Time": "2024-06-03T13:30:00+05:30", "Modified_Time": "2024-10-01T19:35:00+05:30"
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": deal.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    assert_eq!(
        out["output_tree"],
        json!({"external_id": "4150868000001234567", "name": "Acme Freight – Q3 lanes", "amount": 125000,
               "stage": "Closed-Lost to Competition", "status": "lost", "close_date": "2024-09-30",
               "probability": 0, "expected_revenue": 0, "account_external_id": "4150868000000987654",
               "owner_external_id": "4150868000000225013", "source_updated_at": "2024-10-01T14:05:00Z",
               "source": "zoho"}),
        "{}",
        r.text
    );
}

/// Previews system template `code` on `input` (JSON) and returns its output
/// tree, after checking there were no errors.
async fn preview_tree(api: &TenantApi, code: &str, input: &Value) -> Value {
    let sys = system(api, code).await;
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": input.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{code}: {}", r.text);
    out["output_tree"].clone()
}

#[tokio::test]
async fn system_salesforce_account_and_contact_preview_as_c_account_and_c_contact() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-sf-crm").await;
    let account = json!({
        "attributes": {"type": "Account", "url": "/services/data/v60.0/sobjects/Account/0015g00000XyZabAAB"},
        "Id": "0015g00000XyZabAAB", "Name": "Acme Freight ", "Industry": "Transportation",
        "AnnualRevenue": 12500000.0, "NumberOfEmployees": 240, "BillingCountry": "United States",
        "Website": "https://acmefreight.example", "Phone": "(312) 555-0100",
        "LastModifiedDate": "2024-10-01T14:05:00.000+0000"
    });
    assert_eq!(
        preview_tree(&api, "salesforce_account_to_c_account", &account).await,
        json!({"external_id": "0015g00000XyZabAAB", "name": "Acme Freight", "industry": "Transportation",
               "annual_revenue": 12500000.0, "employees": 240, "country": "United States",
               "website": "https://acmefreight.example", "phone": "(312) 555-0100",
               "source_updated_at": "2024-10-01T14:05:00Z", "source": "salesforce"})
    );
    let contact = json!({
        "attributes": {"type": "Contact", "url": "/services/data/v60.0/sobjects/Contact/0035g00000LmNopAAC"},
        "Id": "0035g00000LmNopAAC", "FirstName": "Dana", "LastName": "Whitfield", "Email": " Dana.Whitfield@AcmeFreight.example ",
        "Title": "Logistics Manager", "Phone": "(312) 555-0142", "AccountId": "0015g00000XyZabAAB",
        "LastModifiedDate": "2024-10-02T08:00:00.000+0000"
    });
    assert_eq!(
        preview_tree(&api, "salesforce_contact_to_c_contact", &contact).await,
        json!({"external_id": "0035g00000LmNopAAC", "first_name": "Dana", "last_name": "Whitfield",
               "email": "dana.whitfield@acmefreight.example", "title": "Logistics Manager",
               "phone": "(312) 555-0142", "account_external_id": "0015g00000XyZabAAB",
               "source_updated_at": "2024-10-02T08:00:00Z", "source": "salesforce"})
    );
}

#[tokio::test]
async fn system_hubspot_company_and_contact_preview_as_c_account_and_c_contact() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-hs-crm").await;
    let company = json!({
        "id": "9001",
        "properties": {"name": "Acme Freight", "industry": "TRANSPORTATION_TRUCKING_RAILROAD",
                       "annualrevenue": "12500000", "numberofemployees": "240", "country": "United States",
                       "domain": "acmefreight.example", "phone": "+1 312 555 0100",
                       "hs_lastmodifieddate": "2024-10-01T14:05:00.123Z", "hs_object_id": "9001"},
        "createdAt": "2023-02-01T09:00:00Z", "updatedAt": "2024-10-01T14:05:00.123Z", "archived": false
    });
    assert_eq!(
        preview_tree(&api, "hubspot_company_to_c_account", &company).await,
        json!({"external_id": "9001", "name": "Acme Freight", "industry": "TRANSPORTATION_TRUCKING_RAILROAD",
               "annual_revenue": 12500000, "employees": 240, "country": "United States",
               "website": "acmefreight.example", "phone": "+1 312 555 0100",
               "source_updated_at": "2024-10-01T14:05:00.123Z", "source": "hubspot"})
    );
    let contact = json!({
        "id": "151",
        "properties": {"firstname": "Dana", "lastname": "Whitfield", "email": "Dana.Whitfield@AcmeFreight.example",
                       "jobtitle": "Logistics Manager", "associatedcompanyid": "9001",
                       "lastmodifieddate": "2024-10-02T08:00:00Z", "hs_object_id": "151"},
        "createdAt": "2023-02-01T09:00:00Z", "updatedAt": "2024-10-02T08:00:00Z", "archived": false
    });
    let c = preview_tree(&api, "hubspot_contact_to_c_contact", &contact).await;
    assert_eq!(
        c,
        json!({"external_id": "151", "first_name": "Dana", "last_name": "Whitfield",
               "email": "dana.whitfield@acmefreight.example", "title": "Logistics Manager",
               "account_external_id": "9001", "source_updated_at": "2024-10-02T08:00:00Z",
               "source": "hubspot"})
    );
    // An association wins over the legacy property; without a date property, `updatedAt`.
    let mut assoc = contact.clone();
    assoc["associations"] =
        json!({"companies": {"results": [{"id": "9002", "type": "contact_to_company"}]}});
    assoc["properties"]
        .as_object_mut()
        .unwrap()
        .remove("lastmodifieddate");
    let c = preview_tree(&api, "hubspot_contact_to_c_contact", &assoc).await;
    assert_eq!(c["account_external_id"], "9002");
    assert_eq!(c["source_updated_at"], "2024-10-02T08:00:00Z");
}

#[tokio::test]
async fn system_zoho_account_and_contact_preview_as_c_account_and_c_contact() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-zoho-crm").await;
    let account = json!({
        "id": "4150868000000987654", "Account_Name": "Acme Freight", "Industry": "Transportation",
        "Annual_Revenue": 12500000, "Employees": 240, "Billing_Country": "India",
        "Website": "https://acmefreight.example", "Phone": "+91 22 5550 0100",
        "Owner": {"name": "Pat Lee", "id": "4150868000000225013", "email": "pat@example.com"},
        "Created_Time": "2023-02-01T14:30:00+05:30", "Modified_Time": "2024-10-01T19:35:00+05:30"
    });
    assert_eq!(
        preview_tree(&api, "zoho_account_to_c_account", &account).await,
        json!({"external_id": "4150868000000987654", "name": "Acme Freight", "industry": "Transportation",
               "annual_revenue": 12500000, "employees": 240, "country": "India",
               "website": "https://acmefreight.example", "phone": "+91 22 5550 0100",
               "owner_external_id": "4150868000000225013", "source_updated_at": "2024-10-01T14:05:00Z",
               "source": "zoho"})
    );
    let contact = json!({
        "id": "4150868000001112223", "First_Name": "Dana", "Last_Name": "Whitfield",
        "Email": "Dana.Whitfield@AcmeFreight.example", "Title": "Logistics Manager", "Phone": null,
        "Account_Name": {"name": "Acme Freight", "id": "4150868000000987654"},
        "Owner": {"name": "Pat Lee", "id": "4150868000000225013", "email": "pat@example.com"},
        "Modified_Time": "2024-10-02T13:30:00+05:30"
    });
    assert_eq!(
        preview_tree(&api, "zoho_contact_to_c_contact", &contact).await,
        json!({"external_id": "4150868000001112223", "first_name": "Dana", "last_name": "Whitfield",
               "email": "dana.whitfield@acmefreight.example", "title": "Logistics Manager", "phone": null,
               "account_external_id": "4150868000000987654", "owner_external_id": "4150868000000225013",
               "source_updated_at": "2024-10-02T08:00:00Z", "source": "zoho"})
    );
}

#[tokio::test]
async fn system_xero_invoice_previews_as_an_invoice() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-xero").await;
    let sys = system(&api, "xero_invoice_to_invoice").await;
    let invoice = json!({
        "Type": "ACCREC", "InvoiceID": "243216c5-369e-4056-ac67-05388f86dc81", "InvoiceNumber": "INV-0001",
        "Reference": "Load 4411", "Contact": {"ContactID": "025867f1-d741-4d6b-b1af-9ac774b59ba7", "Name": "Acme Freight"},
        "Date": "/Date(1518685950940+0000)/", "DueDate": "/Date(1519890000000+0000)/", "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {"Description": "Linehaul Dallas → Tulsa", "Quantity": 1.0, "UnitAmount": 1500.0, "AccountCode": "200", "LineAmount": 1500.0},
            {"Description": "Fuel surcharge", "Quantity": 2.0, "UnitAmount": 105.25, "AccountCode": "200", "LineAmount": 210.5}
        ],
        "SubTotal": 1710.5, "TotalTax": 0.0, "Total": 1710.5, "AmountDue": 1710.5, "CurrencyCode": "USD",
        "UpdatedDateUTC": "/Date(1518685950940+0000)/"
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": invoice.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let inv = &out["output_tree"];
    assert_eq!(inv["external_id"], "243216c5-369e-4056-ac67-05388f86dc81");
    assert_eq!(inv["type"], "receivable");
    assert_eq!(inv["status"], "open");
    assert_eq!(inv["issue_date"], "2018-02-15");
    assert_eq!(inv["due_date"], "2018-03-01");
    assert_eq!(inv["lines"][1]["amount"], 210.5);
    assert_eq!(inv["total"], 1710.5);
    assert_eq!(inv["customer"]["name"], "Acme Freight");
    assert_eq!(inv["source_updated_at"], "2018-02-15T09:12:30.940Z");
}

#[tokio::test]
async fn system_quickbooks_invoice_previews_as_an_invoice() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-qbo").await;
    let sys = system(&api, "quickbooks_invoice_to_invoice").await;
    let invoice = json!({
        "Id": "130", "SyncToken": "2", "DocNumber": "1037", "TxnDate": "2024-01-15", "DueDate": "2024-02-14",
        "CustomerRef": {"value": "58", "name": "Acme Freight"}, "PrivateNote": "Load 4411",
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "Line": [
            {"Id": "1", "LineNum": 1, "Description": "Linehaul Dallas → Tulsa", "Amount": 1500.0,
             "DetailType": "SalesItemLineDetail",
             "SalesItemLineDetail": {"ItemRef": {"value": "7", "name": "Linehaul"}, "UnitPrice": 1500, "Qty": 1,
                                     "ItemAccountRef": {"value": "79", "name": "Sales"}, "TaxCodeRef": {"value": "TAX"}}},
            {"Id": "2", "LineNum": 2, "Description": "Fuel surcharge", "Amount": 210.5,
             "DetailType": "SalesItemLineDetail",
             "SalesItemLineDetail": {"ItemRef": {"value": "8", "name": "Fuel"}, "UnitPrice": 105.25, "Qty": 2,
                                     "TaxCodeRef": {"value": "TAX"}}},
            {"Amount": 1710.5, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        ],
        "TxnTaxDetail": {"TotalTax": 136.84},
        "TotalAmt": 1847.34, "Balance": 1847.34,
        "MetaData": {"CreateTime": "2024-01-15T10:30:00-08:00", "LastUpdatedTime": "2024-01-16T09:00:00-08:00"}
    });
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": invoice.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["errors"], json!([]), "{}", r.text);
    let inv = &out["output_tree"];
    assert_eq!(inv["external_id"], "130");
    assert_eq!(inv["number"], "1037");
    assert_eq!(inv["type"], "receivable");
    assert_eq!(inv["status"], "open");
    assert_eq!(inv["issue_date"], "2024-01-15");
    assert_eq!(inv["due_date"], "2024-02-14");
    assert_eq!(
        inv["customer"],
        json!({"name": "Acme Freight", "external_id": "58"})
    );
    assert_eq!(
        inv["lines"].as_array().unwrap().len(),
        2,
        "sub-total line left out"
    );
    assert_eq!(inv["lines"][1]["quantity"], 2);
    assert_eq!(inv["lines"][1]["unit_price"], 105.25);
    assert_eq!(inv["lines"][1]["amount"], 210.5);
    assert_eq!(inv["lines"][0]["account_code"], "79");
    assert_eq!(inv["subtotal"], 1710.5);
    assert_eq!(inv["tax"], 136.84);
    assert_eq!(inv["total"], 1847.34);
    assert_eq!(inv["amount_due"], 1847.34);
    assert_eq!(inv["currency"], "USD");
    assert_eq!(inv["source_updated_at"], "2024-01-16T17:00:00Z");
    assert_eq!(inv["source"], "quickbooks");

    // Paid in full: the balance is 0.
    let mut paid = invoice.clone();
    paid["Balance"] = json!(0);
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"template_id": sys["id"], "input": paid.to_string()}),
        )
        .await;
    assert_eq!(r.ok(200)["output_tree"]["status"], "paid", "{}", r.text);
}

#[tokio::test]
async fn preview_of_malformed_input_is_a_422_with_its_location() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-loc").await;
    // X12: a group count that does not match, at the GE segment.
    let broken = X12_204.replace("GE*1*101~", "GE*2*101~");
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"source_format": "X12", "target_format": "JSON",
                   "mapping_rules": {"rules": [{"target": "id", "source": "ISA.ISA13_control_number"}]},
                   "input": broken}),
        )
        .await;
    let p = r.problem(422, "validation_failed");
    assert!(r.fields().contains("input"), "{}", r.text);
    assert_eq!(p["location"]["segment_id"], "GE", "{}", r.text);
    assert_eq!(p["location"]["segment"], 20, "{}", r.text);
    assert!(p["location"]["element"].is_number(), "{}", r.text);

    // CSV: a record with too many fields, on line 3.
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"source_format": "CSV", "target_format": "JSON",
                   "source_options": {"header": true},
                   "mapping_rules": {"rules": [{"target": "ids", "source": "[*].id"}]},
                   "input": "id,city\n1,Dallas\n2,Tulsa,extra\n"}),
        )
        .await;
    let p = r.problem(422, "validation_failed");
    assert_eq!(p["location"]["line"], 3, "{}", r.text);

    // Mapping failures are a 200 with errors.
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": opportunity_rules(), "input": "{\"Amount\": \"lots\"}"}),
        )
        .await;
    let out = r.ok(200);
    let errors = out["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{}", r.text);
    assert!(errors.iter().all(|e| e["stage"] == "mapping"), "{}", r.text);
}

#[tokio::test]
async fn validate_reports_source_paths_missing_from_the_sample() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-val").await;
    let sys = system(&api, "salesforce_opportunity_to_c_opportunity").await;
    let sample = json!({"Id": "006A", "Name": "Deal", "StageName": "Prospecting"});
    let r = api
        .post(
            "/api/v1/transformations/validate",
            json!({"template_id": sys["id"], "input": sample.to_string()}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["valid"], false);
    let missing: Vec<&str> = out["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["code"] == "source_not_found")
        .map(|p| p["location"]["path"].as_str().unwrap())
        .collect();
    assert!(missing.contains(&"rules[2].source"), "Amount: {}", r.text);
    assert!(
        missing.contains(&"rules[5].source"),
        "CloseDate: {}",
        r.text
    );
    assert!(
        !missing.contains(&"rules[0].source"),
        "Id is there: {}",
        r.text
    );

    // Complete sample: valid.
    let full = json!({"Id": "006A", "Name": "Deal", "Amount": 10, "StageName": "Prospecting",
                      "CloseDate": "2024-01-31", "Probability": 10, "AccountId": "001A",
                      "OwnerId": "005A", "LastModifiedDate": "2024-01-15T10:30:00.000+0000"});
    let r = api
        .post(
            "/api/v1/transformations/validate",
            json!({"template_id": sys["id"], "input": full.to_string()}),
        )
        .await;
    assert_eq!(r.ok(200)["valid"], true, "{}", r.text);

    // Bad inline rules and an unreadable sample: still a 200 listing problems.
    let r = api
        .post(
            "/api/v1/transformations/validate",
            json!({"source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": {"rules": [{"target": "x", "expr": "(("}]}, "input": "{"}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["valid"], false);
    assert!(
        out["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["location"]["path"]
                .as_str()
                .is_some_and(|s| s.starts_with("mapping_rules.rules[0]"))),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn validate_reports_declared_types_the_output_schema_rejects() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-types").await;
    let rules = json!({"rules": [
        {"target": "amount", "source": "Amount", "type": "string"},
        {"target": "count", "source": "N", "type": "integer"},
        {"target": "lines", "source": "Lines", "each": [{"target": "qty", "source": "Q", "type": "boolean"}]}
    ]});
    let schema = json!({"type": "object", "properties": {
        "amount": {"type": "number"}, "count": {"type": "number"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": ["integer", "null"]}}}}
    }});
    let r = api
        .post(
            "/api/v1/transformations/validate",
            json!({"source_format": "JSON", "target_format": "JSON", "mapping_rules": rules,
                   "validation_rules": schema}),
        )
        .await;
    let out = r.ok(200);
    let paths: Vec<&str> = out["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["code"] == "type_mismatch")
        .map(|p| p["location"]["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"amount"), "{}", r.text);
    assert!(paths.iter().any(|p| p.ends_with("qty")), "{}", r.text);
    assert!(
        !paths.contains(&"count"),
        "an integer is a number: {}",
        r.text
    );
    assert_eq!(out["valid"], false);
}

#[tokio::test]
async fn the_list_pages_with_a_cursor_and_filters_by_format() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-page").await;
    let first = api.get("/api/v1/transformations?limit=2").await;
    let first = first.ok(200).clone();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = api
        .get(&format!(
            "/api/v1/transformations?limit=200&cursor={cursor}"
        ))
        .await;
    let rest = rest.ok(200)["data"].as_array().unwrap().clone();
    assert!(rest.len() >= 2);
    let ids: std::collections::BTreeSet<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.iter())
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2 + rest.len(), "no repeats across pages");
    let x12 = api.get("/api/v1/transformations?source_format=x12").await;
    let x12 = x12.ok(200)["data"].as_array().unwrap().clone();
    assert!(!x12.is_empty());
    assert!(x12.iter().all(|t| t["source_format"] == "X12"));
    let bad = api.get("/api/v1/transformations?limit=0").await;
    bad.problem(422, "validation_failed");
}

#[tokio::test]
async fn preview_shows_the_partial_output_and_trace_when_a_rule_fails() {
    let (env, m) = started().await;
    let api = tenant(&env, &m, "tpl-partial").await;
    let r = api
        .post(
            "/api/v1/transformations/preview",
            json!({"source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": {"rules": [
                       {"target": "id", "source": "Id"},
                       {"target": "amount", "source": "Amount", "type": "number"},
                       {"target": "name", "source": "Name", "steps": ["upper"]}
                   ]},
                   "input": r#"{"Id": "006A", "Amount": "lots", "Name": "acme"}"#}),
        )
        .await;
    let out = r.ok(200).clone();
    assert_eq!(
        out["output"],
        Value::Null,
        "nothing is written when a rule failed"
    );
    assert_eq!(out["output_tree"], json!({"id": "006A", "name": "ACME"}));
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["stage"], "mapping");
    assert_eq!(errors[0]["location"]["path"], "$.Amount", "{out}");
    let targets: Vec<&str> = out["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["id", "name"], "the rules that worked are traced");
}

#[tokio::test]
async fn template_changes_are_published_as_transformation_events() {
    let hub = crate::inbound::Hub::start(|_| {}).await;
    let (amqp, bus) = crate::tap_routed(&hub.env).await;
    let created = hub
        .post(
            "/api/v1/transformations",
            json!({"code": "evt", "name": "Events", "source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": opportunity_rules()}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    let v2 = hub
        .put(
            &format!("/api/v1/transformations/{id}"),
            json!({"name": "Events 2"}),
        )
        .await;
    let id2 = v2.ok(200)["id"].as_str().unwrap().to_owned();
    hub.delete(&format!("/api/v1/transformations/{id2}"))
        .await
        .ok(204);
    let mut seen: Vec<hub_testkit::amqp::Message> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        let new = amqp.drain_messages(&bus).await;
        seen.extend(
            new.into_iter()
                .filter(|m| m.routing_key.starts_with("transformation.")),
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let kinds: Vec<&str> = seen.iter().map(|m| m.routing_key.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "transformation.created",
            "transformation.updated",
            "transformation.deleted"
        ]
    );
    let data = |i: usize| seen[i].body["data"].clone();
    assert_eq!(data(0)["id"], id.as_str());
    assert_eq!(
        (data(0)["code"].clone(), data(0)["version"].clone()),
        (json!("evt"), json!(1))
    );
    assert_eq!(data(1)["previous_id"], id.as_str());
    assert_eq!(data(1)["version"], 2);
    assert_eq!(data(2)["id"], id2.as_str());
    for m in &seen {
        assert_eq!(m.body["tenantid"], hub.tenant.as_str(), "{}", m.body);
    }
}

#[tokio::test]
async fn an_inbound_endpoint_runs_the_template_it_references_on_x12_bodies() {
    let hub = crate::inbound::Hub::start(|_| {}).await;
    let t214 = system(&hub, "x12_214_to_shipment_status").await;
    let e = hub
        .endpoint(json!({"endpoint_path": "edi214", "signature_algorithm": "none", "handler_type": "CUSTOM",
                         "transform_template": {"template_id": t214["id"]}}))
        .await;
    assert_eq!(e["transform_template"]["template_id"], t214["id"]);
    let endpoint = e["id"].as_str().unwrap().to_owned();
    let ok = hub
        .send("edi214", &[], X12_214, "application/edi-x12")
        .await;
    let ok_id = ok.ok(200)["id"].as_str().unwrap().to_owned();
    let broken = hub
        .send("edi214", &[], "ISA*00*broken~", "application/edi-x12")
        .await;
    let broken_id = broken.ok(200)["id"].as_str().unwrap().to_owned();
    let events = eventually(15, "both processed or failed once", || async {
        let ev = hub.events(&endpoint).await;
        let done = ev
            .iter()
            .all(|e| e["status"] == "PROCESSED" || !e["last_error"].is_null());
        (ev.len() == 2 && done).then_some(ev)
    })
    .await;
    let by_id = |i: &str| events.iter().find(|e| e["id"] == i).unwrap().clone();
    assert_eq!(by_id(&ok_id)["status"], "PROCESSED");
    let why = by_id(&broken_id)["last_error"].as_str().unwrap().to_owned();
    assert!(
        why.starts_with("transformation template: x12_214_to_shipment_status version")
            && why.contains("the input is not valid X12"),
        "{why}"
    );
    // The typed event carries the template's output.
    let typed = eventually(15, "webhook.processed audited", || async {
        let a = hub
            .get("/api/v1/audit-log?event_type=webhook.processed")
            .await;
        let d = a.body["data"].as_array().cloned().unwrap_or_default();
        (!d.is_empty()).then_some(d)
    })
    .await;
    let payload = &typed[0]["data"]["payload"];
    assert_eq!(payload["pro_number"], "PRO12345", "{payload}");
    assert_eq!(payload["status"], "at_delivery");

    // The template must write JSON, and must be one the tenant sees.
    let t990 = system(&hub, "load_to_x12_990").await;
    let bad = hub
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"endpoint_path": "x", "signature_algorithm": "none",
                   "transform_template": {"template_id": t990["id"]}}),
        )
        .await;
    let p = bad.problem(422, "validation_failed");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("must write JSON"),
        "{p}"
    );
    let other = crate::inbound::Hub::start(|_| {}).await;
    let theirs = other
        .post(
            "/api/v1/transformations",
            json!({"code": "theirs", "name": "Theirs", "source_format": "JSON", "target_format": "JSON",
                   "mapping_rules": opportunity_rules()}),
        )
        .await;
    let theirs = theirs.ok(201)["id"].clone();
    let bad = hub
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"endpoint_path": "y", "signature_algorithm": "none",
                   "transform_template": {"template_id": theirs}}),
        )
        .await;
    let p = bad.problem(422, "validation_failed");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{p}"
    );
}

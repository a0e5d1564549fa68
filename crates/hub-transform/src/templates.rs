//! The system transformation templates the hub ships (`templates/*.json`,
//! embedded at build time): realistic mappings between provider payloads and
//! the hub's entities that every tenant can use as they are or copy.
//!
//! [`system`] parses them; the integration manager stores them at start-up
//! (tenant null, `is_system`). Each file holds the template's columns:
//! `code`, `name`, `description`, `category`, `source_format`,
//! `target_format`, `source_options`, `target_options`, `mapping_rules`,
//! `validation_rules`.

use crate::codec::{Format, FormatOptions};
use crate::error::TransformError;
use serde::Deserialize;
use serde_json::Value;

/// The template files, by file name.
const FILES: [(&str, &str); 27] = [
    (
        "x12_204_to_load.json",
        include_str!("../templates/x12_204_to_load.json"),
    ),
    (
        "load_to_x12_990.json",
        include_str!("../templates/load_to_x12_990.json"),
    ),
    (
        "salesforce_opportunity_to_c_opportunity.json",
        include_str!("../templates/salesforce_opportunity_to_c_opportunity.json"),
    ),
    (
        "xero_invoice_to_invoice.json",
        include_str!("../templates/xero_invoice_to_invoice.json"),
    ),
    (
        "x12_214_to_shipment_status.json",
        include_str!("../templates/x12_214_to_shipment_status.json"),
    ),
    (
        "quickbooks_invoice_to_invoice.json",
        include_str!("../templates/quickbooks_invoice_to_invoice.json"),
    ),
    (
        "hubspot_deal_to_c_opportunity.json",
        include_str!("../templates/hubspot_deal_to_c_opportunity.json"),
    ),
    (
        "zoho_deal_to_c_opportunity.json",
        include_str!("../templates/zoho_deal_to_c_opportunity.json"),
    ),
    (
        "invoice_to_x12_210.json",
        include_str!("../templates/invoice_to_x12_210.json"),
    ),
    (
        "salesforce_account_to_c_account.json",
        include_str!("../templates/salesforce_account_to_c_account.json"),
    ),
    (
        "salesforce_contact_to_c_contact.json",
        include_str!("../templates/salesforce_contact_to_c_contact.json"),
    ),
    (
        "hubspot_company_to_c_account.json",
        include_str!("../templates/hubspot_company_to_c_account.json"),
    ),
    (
        "hubspot_contact_to_c_contact.json",
        include_str!("../templates/hubspot_contact_to_c_contact.json"),
    ),
    (
        "zoho_account_to_c_account.json",
        include_str!("../templates/zoho_account_to_c_account.json"),
    ),
    (
        "zoho_contact_to_c_contact.json",
        include_str!("../templates/zoho_contact_to_c_contact.json"),
    ),
    (
        "quickbooks_customer_to_c_customer.json",
        include_str!("../templates/quickbooks_customer_to_c_customer.json"),
    ),
    (
        "quickbooks_payment_to_c_payment.json",
        include_str!("../templates/quickbooks_payment_to_c_payment.json"),
    ),
    (
        "xero_contact_to_c_customer.json",
        include_str!("../templates/xero_contact_to_c_customer.json"),
    ),
    (
        "xero_payment_to_c_payment.json",
        include_str!("../templates/xero_payment_to_c_payment.json"),
    ),
    (
        "samsara_vehicle_location_to_c_vehicle_location.json",
        include_str!("../templates/samsara_vehicle_location_to_c_vehicle_location.json"),
    ),
    (
        "samsara_hos_log_to_c_hos_log.json",
        include_str!("../templates/samsara_hos_log_to_c_hos_log.json"),
    ),
    (
        "keeptruckin_vehicle_location_to_c_vehicle_location.json",
        include_str!("../templates/keeptruckin_vehicle_location_to_c_vehicle_location.json"),
    ),
    (
        "keeptruckin_hos_log_to_c_hos_log.json",
        include_str!("../templates/keeptruckin_hos_log_to_c_hos_log.json"),
    ),
    (
        "newsapi_article_to_c_article.json",
        include_str!("../templates/newsapi_article_to_c_article.json"),
    ),
    (
        "alphavantage_daily_to_c_quote.json",
        include_str!("../templates/alphavantage_daily_to_c_quote.json"),
    ),
    (
        "invoice_to_quickbooks_invoice.json",
        include_str!("../templates/invoice_to_quickbooks_invoice.json"),
    ),
    (
        "c_opportunity_to_salesforce_opportunity.json",
        include_str!("../templates/c_opportunity_to_salesforce_opportunity.json"),
    ),
];

/// One shipped template, as its file declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemTemplate {
    /// Stable code (`x12_204_to_load`), unique among system templates.
    pub code: String,
    /// Display name.
    pub name: String,
    /// What it maps and from where.
    pub description: String,
    /// `LOAD`, `INVOICE`, `CRM`, …
    pub category: String,
    /// Input format.
    pub source_format: Format,
    /// Output format.
    pub target_format: Format,
    /// Options of the input format (null: the defaults).
    pub source_options: Option<Value>,
    /// Options of the output format (null: the defaults).
    pub target_options: Option<Value>,
    /// The mapping rules (`docs/transformations.md`).
    pub mapping_rules: Value,
    /// JSON Schema of the output, or `{"input": …, "output": …}`.
    pub validation_rules: Option<Value>,
}

/// Every shipped template, checked: the rules compile and the options fit
/// their formats. An error names the file (a broken file is a build defect,
/// caught by this crate's tests).
pub fn system() -> Result<Vec<SystemTemplate>, TransformError> {
    FILES
        .iter()
        .map(|(file, text)| {
            let bad = |m: String| TransformError::new("invalid_template", format!("{file}: {m}"));
            let t: SystemTemplate = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
            FormatOptions::from_value(t.source_format, t.source_options.as_ref())
                .map_err(|e| bad(e.to_string()))?;
            FormatOptions::from_value(t.target_format, t.target_options.as_ref())
                .map_err(|e| bad(e.to_string()))?;
            crate::mapping::compile(&t.mapping_rules).map_err(|errors| {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                bad(all.join("; "))
            })?;
            Ok(t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::codec::{self, FormatOptions};
    use crate::error::Limits;
    use serde_json::Value;

    /// Runs the system template `code` on `text` (read in its source format)
    /// and checks the output against its output schema.
    fn run(code: &str, text: &str) -> Value {
        let t = super::system()
            .unwrap()
            .into_iter()
            .find(|t| t.code == code)
            .unwrap();
        let options =
            FormatOptions::from_value(t.source_format, t.source_options.as_ref()).unwrap();
        let input = codec::read(t.source_format, text, &options, Limits::default()).unwrap();
        let program = crate::mapping::compile(&t.mapping_rules).unwrap();
        let out = crate::mapping::run(&program, &input).unwrap();
        let schema = t
            .validation_rules
            .as_ref()
            .map(|v| v.get("output").unwrap_or(v).clone());
        if let Some(schema) = schema.filter(|s| s.get("input").is_none()) {
            let problems = crate::validate::check(&schema, &out.value);
            assert!(problems.is_empty(), "{code}: {problems:?}");
        }
        out.value
    }

    #[test]
    fn the_214_template_reads_the_214_vector() {
        let text = include_str!("../tests/vectors/x12/214_shipment_status.edi");
        let event = run("x12_214_to_shipment_status", text);
        assert_eq!(event["pro_number"], "PRO12345");
        assert_eq!(event["shipment_id"], "BOL98765");
        assert_eq!(event["status"], "at_delivery");
        assert_eq!(event["events"][0]["location"]["city"], "DALLAS");
        assert_eq!(event["events"][0]["date"], "2023-11-22");
        assert_eq!(event["weight_lb"], 12000);
    }
    #[test]
    fn every_shipped_template_is_valid() {
        let all = super::system().unwrap();
        assert_eq!(all.len(), super::FILES.len());
        let mut codes: Vec<&str> = all.iter().map(|t| t.code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are unique");
    }

    #[test]
    fn the_synced_entity_templates_map_provider_records() {
        use serde_json::json;
        let c = run(
            "quickbooks_customer_to_c_customer",
            &json!({"Id": "7", "SyncToken": "2", "DisplayName": " Acme Freight ", "Active": true,
                    "PrimaryEmailAddr": {"Address": "AP@Acme.example.com"}, "Balance": 10.5,
                    "MetaData": {"LastUpdatedTime": "2024-01-15T02:30:00-08:00"}})
            .to_string(),
        );
        assert_eq!(
            (
                &c["name"],
                &c["email"],
                &c["status"],
                &c["source_updated_at"]
            ),
            (
                &json!("Acme Freight"),
                &json!("ap@acme.example.com"),
                &json!("active"),
                &json!("2024-01-15T10:30:00Z")
            )
        );
        let x = run(
            "xero_contact_to_c_customer",
            &json!({"ContactID": "c1", "Name": "Shipper 1", "ContactStatus": "ARCHIVED",
                    "UpdatedDateUTC": "/Date(1705314600000+0000)/"})
            .to_string(),
        );
        assert_eq!(
            (&x["status"], &x["source_updated_at"]),
            (&json!("archived"), &json!("2024-01-15T10:30:00Z"))
        );
        let p = run(
            "quickbooks_payment_to_c_payment",
            &json!({"Id": "501", "TotalAmt": 1323.19, "TxnDate": "2024-01-11", "CustomerRef": {"value": "1"},
                    "Line": [{"Amount": 1323.19, "LinkedTxn": [{"TxnId": "101", "TxnType": "Invoice"}, {"TxnId": "9", "TxnType": "CreditMemo"}]}],
                    "MetaData": {"LastUpdatedTime": "2024-01-15T02:30:00-08:00"}})
            .to_string(),
        );
        assert_eq!(p["invoices"], json!([{"external_id": "101"}]));
        let xp = run(
            "xero_payment_to_c_payment",
            &json!({"PaymentID": "p1", "PaymentType": "ACCRECPAYMENT", "Amount": 5, "Status": "AUTHORISED",
                    "Date": "/Date(1705314600000+0000)/", "Invoice": {"InvoiceID": "i1", "InvoiceNumber": "INV-1"},
                    "UpdatedDateUTC": "/Date(1705314600000+0000)/"})
            .to_string(),
        );
        assert_eq!(
            (
                &xp["type"],
                &xp["date"],
                &xp["invoices"][0]["external_id"],
                &xp["status"]
            ),
            (
                &json!("received"),
                &json!("2024-01-15"),
                &json!("i1"),
                &json!("completed")
            )
        );
        let h = run(
            "samsara_hos_log_to_c_hos_log",
            &json!({"driver": {"id": "53001", "name": "Driver 1"}, "hosLogs": [
                {"hosStatusType": "offDuty", "logStartTime": "2024-01-15T01:00:00Z", "logEndTime": "2024-01-15T02:00:00Z", "vehicle": {"id": "9"}},
                {"hosStatusType": "sleeperBed", "logStartTime": "2024-01-15T02:00:00Z", "logEndTime": "2024-01-15T10:30:00Z"}]})
            .to_string(),
        );
        assert_eq!(
            (
                &h["logs"][1]["status"],
                &h["logs"][0]["vehicle_external_id"],
                &h["source_updated_at"]
            ),
            (
                &json!("sleeper"),
                &json!("9"),
                &json!("2024-01-15T10:30:00Z")
            )
        );
        let k = run(
            "keeptruckin_hos_log_to_c_hos_log",
            &json!({"hos_log": {"id": 4100001, "status": "driving", "start_time": "2024-01-15T09:30:00Z",
                    "end_time": "2024-01-15T10:30:00Z", "updated_at": "2024-01-15T10:30:00Z",
                    "driver": {"id": 120001, "first_name": "Ana", "last_name": "Driver1"}, "vehicle": {"id": 80001}}})
            .to_string(),
        );
        assert_eq!(
            (
                &k["external_id"],
                &k["driver"]["name"],
                &k["logs"][0]["status"]
            ),
            (&json!("4100001"), &json!("Ana Driver1"), &json!("driving"))
        );
        let kv = run(
            "keeptruckin_vehicle_location_to_c_vehicle_location",
            &json!({"vehicle": {"id": 80001, "number": "Truck 01", "current_location":
                    {"lat": 36.2, "lon": -115.0, "bearing": 37.0, "located_at": "2024-01-15T10:30:00Z"}}})
            .to_string(),
        );
        assert_eq!(
            (&kv["external_id"], &kv["heading"]),
            (&json!("80001"), &json!(37.0))
        );
        let a = run(
            "newsapi_article_to_c_article",
            &json!({"source": {"id": null, "name": "FreightWaves"}, "title": "Rates", "url": "https://n.example.com/1",
                    "publishedAt": "2024-01-15T10:30:00Z"})
            .to_string(),
        );
        assert_eq!(
            (&a["external_id"], &a["publisher"]["name"]),
            (&json!("https://n.example.com/1"), &json!("FreightWaves"))
        );
        let q = run(
            "alphavantage_daily_to_c_quote",
            &json!({"date": "2024-01-15", "1. open": "161.0000", "2. high": "162.1000", "3. low": "160.0000",
                    "4. close": "161.5000", "5. volume": "3910000"})
            .to_string(),
        );
        assert_eq!(
            (&q["close"], &q["volume"], &q["source_updated_at"]),
            (
                &json!(161.5),
                &json!(3_910_000),
                &json!("2024-01-15T00:00:00Z")
            )
        );
    }

    #[test]
    fn the_210_template_writes_the_210_vector() {
        let invoice = serde_json::json!({
            "number": "INV-4411", "shipment_id": "BOL98765", "carrier_scac": "ABCD",
            "payment_method": "prepaid", "issue_date": "2023-11-25", "delivery_date": "2023-11-24",
            "total": 2450.0, "weight_lb": 12000,
            "shipper": {"name": "ACME SHIPPING"}, "consignee": {"name": "BETA RETAIL"},
            "lines": [{"line_number": 1, "description": "DRY VAN LOAD", "quantity": 10, "packaging": "PLT",
                       "weight_lb": 12000.0, "rate": 2450.0, "rate_qualifier": "FR", "amount": 2450.0}],
            "edi": {"sender_id": "SHIPPERCO", "receiver_id": "CARRIERCO", "control_number": 101,
                    "sent_at": "2023-11-22T12:00:00Z"}
        });
        let tree = run("invoice_to_x12_210", &invoice.to_string());
        let text = codec::write(codec::Format::X12, &tree, &FormatOptions::X12).unwrap();
        let expected = include_str!("../tests/vectors/x12/210_freight_invoice.edi");
        assert_eq!(text, expected);
        let back = codec::read(
            codec::Format::X12,
            &text,
            &FormatOptions::X12,
            Limits::default(),
        )
        .expect("the 210 written reads back");
        let set = &back["groups"][0]["sets"][0];
        assert_eq!(set["B3"]["B302_invoice_number"], "INV-4411");
        assert_eq!(set["LX_loop"][0]["L1"][0]["L104_charge"], "245000");
    }
}

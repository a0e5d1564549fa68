//! Subscriptions that reference a transformation template (issue 28): the
//! receiver gets the template's output in its target format, signed; a
//! reference without a version follows the template's active version, a
//! pinned one does not; an event the template cannot map fails its delivery
//! without blaming the receiver; a template in use cannot be deleted.

use crate::outbound::{verify, world};
use hub_testkit::eventually;
use hub_testkit::receiver::{Receiver, Reply};
use serde_json::{Value, json};
use std::time::Duration;

/// A JSON → XML template of load events: `<Load id="…"><Weight unit="kg">…`.
fn load_xml(root: &str) -> Value {
    json!({
        "code": "load_to_partner_xml", "name": "Loads for the partner",
        "source_format": "JSON", "target_format": "XML",
        "target_options": {"root": root, "declaration": false},
        "mapping_rules": {"rules": [
            {"target": "@id", "source": "data.load_id", "required": true},
            {"target": "Event", "source": "type"},
            {"target": "Weight.@unit", "value": "kg"},
            {"target": "Weight.#text", "source": "data.weight_lb",
             "steps": [{"convert": {"from": "lb", "to": "kg"}}, {"round": 1}]}
        ]}
    })
}

#[tokio::test]
async fn subscriptions_deliver_the_template_output_following_or_pinning_its_version() {
    let w = world(|_| {}).await;
    let (s, v1) = w
        .api("POST", "/api/v1/transformations", Some(load_xml("Load")))
        .await;
    assert_eq!(s, 201, "{v1}");
    let template = v1["id"].as_str().unwrap().to_owned();

    let follows = Receiver::start().await;
    let pinned = Receiver::start().await;
    let sub_follow = w
        .subscribe(
            json!({"name": "follows", "url": follows.url("/h"), "event_types": ["load.*"],
                          "transform_template": {"template_id": template}}),
        )
        .await;
    let sub_pinned = w
        .subscribe(
            json!({"name": "pinned", "url": pinned.url("/h"), "event_types": ["load.*"],
                          "transform_template": {"template_id": template, "version": 1}}),
        )
        .await;
    assert_eq!(
        sub_follow["transform_template"],
        json!({"template_id": template})
    );

    w.post_event(
        "load.created",
        json!({"load_id": "L-100", "weight_lb": 1000}),
    )
    .await;
    let expected_v1 =
        r#"<Load id="L-100"><Event>load.created</Event><Weight unit="kg">453.6</Weight></Load>"#;
    for (rx, sub) in [(&follows, &sub_follow), (&pinned, &sub_pinned)] {
        let got = rx.wait_for(1, 20).await;
        let r = &got[0];
        assert_eq!(String::from_utf8_lossy(&r.body), expected_v1);
        assert_eq!(r.header("content-type"), Some("application/xml"));
        let secret = sub["secret"].as_str().unwrap();
        let signed = verify(
            secret,
            r.header("webhook-id").unwrap(),
            r.header("webhook-timestamp").unwrap(),
            &r.body,
            r.header("webhook-signature").unwrap(),
        );
        assert!(signed, "the XML body is what is signed");
    }

    // Version 2 renames the root; the follower picks it up, the pinned one
    // keeps version 1.
    let (s, v2) = w
        .api(
            "PUT",
            &format!("/api/v1/transformations/{template}"),
            Some(json!({"target_options": {"root": "Shipment", "declaration": false}})),
        )
        .await;
    assert_eq!((s, v2["version"].clone()), (200, json!(2)), "{v2}");
    tokio::time::sleep(hub_platform::transforms::FOLLOW_TTL + Duration::from_millis(200)).await;
    w.post_event(
        "load.updated",
        json!({"load_id": "L-101", "weight_lb": 2000}),
    )
    .await;
    let got = follows.wait_for(2, 20).await;
    let body = String::from_utf8_lossy(&got[1].body).to_string();
    assert!(body.starts_with(r#"<Shipment id="L-101">"#), "{body}");
    let got = pinned.wait_for(2, 20).await;
    let body = String::from_utf8_lossy(&got[1].body).to_string();
    assert!(body.starts_with(r#"<Load id="L-101">"#), "{body}");

    // An event the template cannot map (no load_id) fails at the hub: no
    // request, the error says why, and the receiver's breaker and failure
    // streak are untouched.
    w.post_event("load.updated", json!({"weight_lb": 5})).await;
    let sub = sub_pinned["id"].as_str().unwrap().to_owned();
    let failed = eventually(20, "the unmappable delivery's attempt", || async {
        let all = w.deliveries(&sub, "").await;
        all.into_iter()
            .find(|d| d["attempt_number"].as_i64().unwrap_or(0) >= 1 && d["status"] != "DELIVERED")
    })
    .await;
    let error = failed["error_message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("transformation template load_to_partner_xml version 1")
            && error.contains("data.load_id"),
        "{failed}"
    );
    let detail = w.delivery(&sub, failed["id"].as_str().unwrap()).await;
    assert_eq!(
        detail["attempts"][0]["response_status"],
        Value::Null,
        "{detail}"
    );
    assert_eq!(pinned.requests().len(), 2, "nothing was sent");
    let s = w.subscription(&sub).await;
    assert_eq!(s["consecutive_failures"], 0, "{s}");
    assert_eq!(s["circuit_state"], "CLOSED", "{s}");

    // A template in use cannot be deleted; the answer names its users.
    let (s, refused) = w
        .api(
            "DELETE",
            &format!("/api/v1/transformations/{template}"),
            None,
        )
        .await;
    assert_eq!(s, 409, "{refused}");
    let users: Vec<&str> = refused["used_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 2, "{refused}");
    assert!(users.contains(&sub.as_str()));
}

#[tokio::test]
async fn references_are_checked_when_a_subscription_is_saved() {
    let w = world(|_| {}).await;
    let (_, edi) = w
        .api(
            "POST",
            "/api/v1/transformations",
            Some(json!({"code": "x12_in", "name": "reads X12", "source_format": "X12",
                        "target_format": "JSON", "mapping_rules": {"rules": [{"target": "a", "source": "ISA"}]}})),
        )
        .await;
    let missing = uuid::Uuid::now_v7();
    let rx = Receiver::start().await;
    rx.set_default(Reply::Status(200));
    for (template, says) in [
        (json!({"template_id": missing}), "does not exist"),
        (
            json!({"template_id": missing, "version": 0}),
            "version must be",
        ),
        (json!({"template_id": edi["id"]}), "reads X12"),
        (json!({"template_id": "not-a-uuid"}), "UUID"),
    ] {
        let (s, v) = w
            .api(
                "POST",
                "/api/v1/webhooks/subscriptions",
                Some(json!({"name": "bad", "url": rx.url("/h"), "event_types": ["load.*"], "transform_template": template})),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["errors"][0]["field"], "transform_template", "{v}");
        assert!(
            v["errors"][0]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    // A system template every tenant sees can be referenced (pinned).
    let (_, list) = w
        .api(
            "GET",
            "/api/v1/transformations?is_system=true&limit=200",
            None,
        )
        .await;
    let system = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "load_to_x12_990")
        .unwrap()
        .clone();
    let (s, v) = w
        .api(
            "POST",
            "/api/v1/webhooks/subscriptions",
            Some(json!({"name": "990s", "url": rx.url("/h"), "event_types": ["load.*"],
                        "transform_template": {"template_id": system["id"], "version": system["version"]}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

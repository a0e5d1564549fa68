//! Provider handshakes: verified requests that set a subscription up rather
//! than carry events, answered at once and never stored.

use super::Scheme;
use serde_json::{Value, json};

/// How a handshake is answered (with 200).
#[derive(Debug, Clone, PartialEq)]
pub enum Handshake {
    /// Slack's `url_verification`: `{"challenge": …}` echoed back as JSON.
    Json(Value),
    /// Xero's intent to receive (a signed request with no events): an empty body.
    Empty,
}

/// The handshake `payload` (the parsed body of a verified request) is, if
/// any, per the endpoint's scheme.
pub fn handshake(scheme: Scheme, payload: Option<&Value>) -> Option<Handshake> {
    let p = payload?;
    match scheme {
        Scheme::Slack if p.get("type").and_then(Value::as_str) == Some("url_verification") => {
            Some(Handshake::Json(json!({"challenge": p.get("challenge")})))
        }
        Scheme::Xero
            if p.get("events")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty) =>
        {
            Some(Handshake::Empty)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_challenge_and_xero_intent_are_handshakes_nothing_else_is() {
        let slack = json!({"type": "url_verification", "challenge": "c-1"});
        assert_eq!(
            handshake(Scheme::Slack, Some(&slack)),
            Some(Handshake::Json(json!({"challenge": "c-1"})))
        );
        let intent = json!({"events": [], "firstEventSequence": 0});
        assert_eq!(
            handshake(Scheme::Xero, Some(&intent)),
            Some(Handshake::Empty)
        );
        let event = json!({"events": [{"eventType": "UPDATE"}]});
        assert_eq!(handshake(Scheme::Xero, Some(&event)), None);
        assert_eq!(handshake(Scheme::Github, Some(&slack)), None);
        assert_eq!(handshake(Scheme::Slack, None), None);
    }
}

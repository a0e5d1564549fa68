//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256>`
//! over `{msg_id}.{timestamp}.{body}`, keyed by a `whsec_` secret.

use super::WebhookError;
use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

const PREFIX: &str = "whsec_";
const MIN_KEY: usize = 24;
const MAX_KEY: usize = 64;
const GENERATED_KEY: usize = 32;

/// How far a `webhook-timestamp` may be from now, in seconds, when verifying
/// (Standard Webhooks recommends five minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Standard base64 that accepts the secret with or without `=` padding, as
/// other Standard Webhooks libraries do.
const SECRET_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A Standard Webhooks signing secret: `"whsec_"` + base64 of 24..=64 random
/// bytes. `Debug` prints `[redacted]`; equality is constant time.
#[derive(Clone)]
pub struct WebhookSecret {
    /// The full `whsec_…` text, exactly as generated or parsed.
    text: String,
    /// The decoded HMAC key, 24 to 64 bytes.
    key: Vec<u8>,
}

impl WebhookSecret {
    /// A fresh secret of 32 random bytes from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY];
        rand::rng().fill_bytes(&mut key);
        Self {
            text: format!("{PREFIX}{}", STANDARD.encode(&key)),
            key,
        }
    }

    /// Parses `"whsec_<base64>"`; the decoded key must be 24..=64 bytes.
    pub fn parse(s: &str) -> Result<Self, WebhookError> {
        const ALLOWED: &str = "must be \"whsec_\" followed by the standard base64 of 24 to 64 \
                               random bytes; leave it out to have one generated";
        let Some(b64) = s.strip_prefix(PREFIX) else {
            return Err(WebhookError::InvalidSecret(format!(
                "does not start with \"whsec_\"; {ALLOWED}"
            )));
        };
        // The decode error is not quoted: it names the offending byte.
        let key = SECRET_B64.decode(b64).map_err(|_| {
            WebhookError::InvalidSecret(format!("is not valid base64 after \"whsec_\"; {ALLOWED}"))
        })?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(WebhookError::InvalidSecret(format!(
                "decodes to {} bytes; {ALLOWED}",
                key.len()
            )));
        }
        Ok(Self {
            text: s.to_owned(),
            key,
        })
    }

    /// The full `"whsec_…"` text, to show once or to encrypt at rest.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The last four characters of the text, the only part ever displayed
    /// after creation.
    pub fn last4(&self) -> String {
        crate::secret::last_four(&self.text)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for WebhookSecret {}

/// `"v1,<base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}"))>"` per
/// <https://www.standardwebhooks.com/>.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    sign_with_key(&secret.key, msg_id, timestamp, body)
}

/// [`sign`] with a raw HMAC key (inbound endpoints keep theirs in their own
/// form: `whsec_` optional, any length).
pub(crate) fn sign_with_key(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = mac(key, msg_id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(mac))
}

fn mac(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The `webhook-signature` header value: one [`sign`] per secret,
/// space-separated (current secret first, then the previous one during
/// rotation).
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verifies a `webhook-signature` header (any listed v1 signature matches,
/// constant time) and that `timestamp` (unix seconds text) is within
/// `tolerance_secs` of `now_unix`. For tests and receivers; [`check`] says
/// why a request does not verify.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> bool {
    let signed = Signed {
        msg_id,
        timestamp,
        body,
        header,
    };
    check(&[&secret.key], &signed, now_unix, tolerance_secs).is_ok()
}

/// A request signed the Standard Webhooks way, as received.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub msg_id: &'a str,
    /// `webhook-timestamp`, as sent.
    pub timestamp: &'a str,
    /// The raw body.
    pub body: &'a [u8],
    /// `webhook-signature`: space-delimited `v1,<base64>` entries.
    pub header: &'a str,
}

/// Why a Standard Webhooks request does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// `webhook-timestamp` is not unix seconds in canonical decimal.
    Timestamp,
    /// The timestamp is further than the tolerance from now.
    Stale {
        /// Now minus the timestamp, in seconds.
        skew_seconds: i64,
    },
    /// The header has no `v1,` entry in base64.
    NoSignature,
    /// No `v1,` entry is the signature under any of the keys.
    NoMatch,
}

/// The one Standard Webhooks verifier, for both directions: `timestamp` must
/// be unix seconds in canonical decimal (digits only, no sign, no leading
/// zeros, no spaces: the text [`sign`] makes, since the spec's timestamp is
/// integer seconds and the signed text is the header as sent) within
/// `tolerance_secs` of `now_unix` (a negative tolerance counts as 0), and
/// some `v1,` entry of the space-delimited header must be the base64
/// HMAC-SHA256 under one of `keys` (constant-time comparisons; every entry
/// and key is tried). Entries of other versions (`v1a,…`) are ignored.
pub fn check(
    keys: &[&[u8]],
    signed: &Signed<'_>,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), Mismatch> {
    let ts = parse_timestamp(signed.timestamp).ok_or(Mismatch::Timestamp)?;
    within_tolerance(ts, now_unix, tolerance_secs)
        .map_err(|skew_seconds| Mismatch::Stale { skew_seconds })?;
    let sigs: Vec<Vec<u8>> = signed
        .header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| STANDARD.decode(sig).ok())
        .collect();
    if sigs.is_empty() {
        return Err(Mismatch::NoSignature);
    }
    // Look at every key and entry: only each comparison must be constant
    // time, but there is no reason to stop early either.
    let mut ok = Choice::from(0);
    for key in keys {
        let expected = mac(key, signed.msg_id, signed.timestamp, signed.body);
        for sig in &sigs {
            ok |= sig.as_slice().ct_eq(expected.as_slice());
        }
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(Mismatch::NoMatch)
    }
}

/// Whether the signed time `ts` is within `tolerance_secs` of `now` (a
/// negative tolerance counts as 0); else now minus `ts`, saturated.
pub(crate) fn within_tolerance(ts: i64, now: i64, tolerance_secs: i64) -> Result<(), i64> {
    if now.abs_diff(ts) > tolerance_secs.max(0).unsigned_abs() {
        return Err(now.saturating_sub(ts));
    }
    Ok(())
}

/// Unix seconds in canonical decimal form.
fn parse_timestamp(s: &str) -> Option<i64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shared vectors, copied into the crate so a clone tests alone.
    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/signatures.json");

    fn secret_of(bytes: &[u8]) -> WebhookSecret {
        WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(bytes))).unwrap()
    }

    #[test]
    fn standard_webhooks_vectors_verify_and_sign() {
        let text =
            std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("reading {VECTORS}: {e}"));
        let all: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = all["schemes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scheme"] == "standard-webhooks")
            .expect("a standard-webhooks scheme")["cases"]
            .as_array()
            .unwrap();
        assert!(cases.len() >= 5, "expected the published cases");
        for case in cases {
            let field = |k: &str| case[k].as_str().unwrap_or_else(|| panic!("{k} in {case}"));
            let secret = WebhookSecret::parse(field("secret")).unwrap();
            let (id, ts, body, header) = (
                field("id"),
                field("timestamp"),
                field("body"),
                field("signature"),
            );
            let valid = case["valid"].as_bool().unwrap();
            let now: i64 = ts.parse().unwrap();
            assert_eq!(
                verify(
                    &secret,
                    id,
                    ts,
                    body.as_bytes(),
                    header,
                    now,
                    DEFAULT_TOLERANCE_SECS
                ),
                valid,
                "{case}"
            );
            let ours = sign(&secret, id, now, body.as_bytes());
            if !header.contains(' ') {
                assert_eq!(ours == header, valid, "{case}");
            } else {
                assert_eq!(header.split(' ').any(|s| s == ours), valid, "{case}");
            }
        }
    }

    #[test]
    fn generated_secret_is_32_bytes_and_parses_back() {
        let s = WebhookSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        let back = WebhookSecret::parse(s.expose()).unwrap();
        assert_eq!(back.key.len(), 32);
        assert_eq!(back, s);
        assert_eq!(back.expose(), s.expose());
        assert_ne!(WebhookSecret::generate(), s, "fresh randomness per secret");
    }

    #[test]
    fn secret_key_length_must_be_24_to_64_bytes() {
        for n in [MIN_KEY, 32, MAX_KEY] {
            assert!(
                WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(vec![7u8; n]))).is_ok(),
                "{n}"
            );
        }
        for n in [0, 1, MIN_KEY - 1, MAX_KEY + 1, 500] {
            let err = WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(vec![7u8; n])))
                .unwrap_err();
            assert!(
                err.to_string().contains(&format!("decodes to {n} bytes")),
                "{err}"
            );
        }
    }

    #[test]
    fn secret_parse_accepts_unpadded_base64() {
        let padded = format!("whsec_{}", STANDARD.encode([9u8; 32]));
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            WebhookSecret::parse(unpadded).unwrap(),
            WebhookSecret::parse(&padded).unwrap()
        );
        assert_eq!(WebhookSecret::parse(unpadded).unwrap().expose(), unpadded);
    }

    #[test]
    fn secret_errors_never_quote_the_secret() {
        let body = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for bad in [
            body.to_owned(),
            format!("WHSEC_{body}"),
            format!("whsec_{body}!"),
            format!("whsec_ {body}"),
            format!("whsec_{}", &body[..20]),
            format!("whsec_{body}-_"),
        ] {
            let err = WebhookSecret::parse(&bad).unwrap_err();
            assert!(matches!(err, WebhookError::InvalidSecret(_)));
            let msg = err.to_string();
            assert!(!msg.contains(&body[..8]), "{msg}");
            assert!(msg.contains("24 to 64"), "{msg}");
        }
    }

    #[test]
    fn secret_debug_is_redacted_and_last4_is_the_tail() {
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let dbg = format!("{s:?} {:?}", vec![s.clone()]);
        assert!(dbg.contains("[redacted]"));
        assert!(!dbg.contains("MfKQ"));
        assert_eq!(s.last4(), "LaSw");
    }

    #[test]
    fn rotation_header_lists_current_then_previous() {
        let (new, old) = (secret_of(&[1; 32]), secret_of(&[2; 32]));
        let h = signature_header(&[&new, &old], "msg_1", 1_700_000_000, b"{}");
        assert_eq!(
            h,
            format!(
                "{} {}",
                sign(&new, "msg_1", 1_700_000_000, b"{}"),
                sign(&old, "msg_1", 1_700_000_000, b"{}")
            )
        );
        // Either secret verifies the header; a third one does not.
        for (s, listed) in [(&new, true), (&old, true), (&secret_of(&[3; 32]), false)] {
            let verified = verify(s, "msg_1", "1700000000", b"{}", &h, 1_700_000_000, 300);
            assert_eq!(verified, listed);
        }
        assert_eq!(signature_header(&[], "msg_1", 1, b""), "");
    }

    #[test]
    fn verify_enforces_timestamp_tolerance_both_ways() {
        let s = secret_of(&[5; 24]);
        let h = sign(&s, "m", 1000, b"x");
        assert!(verify(&s, "m", "1000", b"x", &h, 1300, 300));
        assert!(verify(&s, "m", "1000", b"x", &h, 700, 300));
        assert!(!verify(&s, "m", "1000", b"x", &h, 1301, 300));
        assert!(!verify(&s, "m", "1000", b"x", &h, 699, 300));
        assert!(verify(&s, "m", "1000", b"x", &h, 1000, 0));
        assert!(!verify(&s, "m", "1000", b"x", &h, 1001, -5));
        assert!(!verify(&s, "m", "1000", b"x", &h, i64::MIN, i64::MAX - 1));
        assert!(verify(&s, "m", "1000", b"x", &h, i64::MAX, i64::MAX));
    }

    #[test]
    fn verify_rejects_non_canonical_timestamps() {
        let s = secret_of(&[5; 24]);
        let h = sign(&s, "m", 1000, b"x");
        for ts in [
            "",
            "01000",
            "+1000",
            "-1000",
            "1000 ",
            " 1000",
            "1e3",
            "1000.0",
            "99999999999999999999",
        ] {
            assert!(!verify(&s, "m", ts, b"x", &h, 1000, i64::MAX), "{ts:?}");
        }
        let zero = sign(&s, "m", 0, b"x");
        assert!(verify(&s, "m", "0", b"x", &zero, 0, 0));
    }

    #[test]
    fn verify_ignores_other_versions_and_garbage_entries() {
        let s = secret_of(&[5; 24]);
        let good = sign(&s, "m", 1000, b"x");
        let b64 = good.strip_prefix("v1,").unwrap();
        assert!(!verify(
            &s,
            "m",
            "1000",
            b"x",
            &format!("v1a,{b64}"),
            1000,
            300
        ));
        assert!(!verify(
            &s,
            "m",
            "1000",
            b"x",
            &format!("v2,{b64}"),
            1000,
            300
        ));
        assert!(!verify(&s, "m", "1000", b"x", b64, 1000, 300));
        assert!(!verify(&s, "m", "1000", b"x", "", 1000, 300));
        assert!(verify(
            &s,
            "m",
            "1000",
            b"x",
            &format!("v1a,xyz  garbage {good} v1,"),
            1000,
            300
        ));
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), MIN_KEY..=MAX_KEY)
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            k in key(),
            id in "[A-Za-z0-9_]{1,40}",
            ts in 0i64..4_000_000_000,
            skew in -300i64..=300,
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let s = secret_of(&k);
            let sig = sign(&s, &id, ts, &body);
            prop_assert!(sig.starts_with("v1,"));
            prop_assert_eq!(sig.len(), 3 + 44);
            prop_assert!(verify(&s, &id, &ts.to_string(), &body, &sig, ts + skew, 300));
            let parsed = WebhookSecret::parse(s.expose()).unwrap();
            prop_assert_eq!(sign(&parsed, &id, ts, &body), sig);
        }

        #[test]
        fn any_tampering_is_detected(
            k in key(),
            other in key(),
            id in "[A-Za-z0-9_]{1,40}",
            ts in 1i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 1..300),
            pos in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let s = secret_of(&k);
            let sig = sign(&s, &id, ts, &body);
            let tss = ts.to_string();
            let ok = |sec: &WebhookSecret, id: &str, tss: &str, body: &[u8], sig: &str| {
                verify(sec, id, tss, body, sig, ts, 300)
            };
            prop_assert!(ok(&s, &id, &tss, &body, &sig));

            let mut b = body.clone();
            let i = pos.index(b.len());
            b[i] ^= flip;
            prop_assert!(!ok(&s, &id, &tss, &b, &sig), "body");
            let mut longer = body.clone();
            longer.push(b' ');
            prop_assert!(!ok(&s, &id, &tss, &longer, &sig), "appended byte");

            prop_assert!(!ok(&s, &format!("{id}x"), &tss, &body, &sig), "id");
            prop_assert!(!ok(&s, &id, &(ts - 1).to_string(), &body, &sig), "timestamp");

            let mut chars: Vec<char> = sig.chars().collect();
            let i = 3 + pos.index(chars.len() - 3);
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let forged: String = chars.into_iter().collect();
            prop_assert!(!ok(&s, &id, &tss, &body, &forged), "signature");

            if other != k {
                prop_assert!(!ok(&secret_of(&other), &id, &tss, &body, &sig), "other secret");
            }
        }

        #[test]
        fn secret_parse_never_panics(s in "(whsec_)?\\PC{0,100}") {
            let _ = WebhookSecret::parse(&s);
        }

        #[test]
        fn verify_never_panics(ts in "\\PC{0,25}", header in "\\PC{0,200}", now in any::<i64>(), tol in any::<i64>()) {
            let _ = verify(&secret_of(&[1; 32]), "m", &ts, b"b", &header, now, tol);
        }
    }
}

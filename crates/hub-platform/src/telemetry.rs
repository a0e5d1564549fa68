//! Logs and traces: `tracing` with `LOG_FORMAT=json|pretty` and `RUST_LOG`
//! filtering, plus OpenTelemetry (OTLP/HTTP) export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use crate::config::{Config, LogFormat};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace exporter alive; flushes on drop.
pub struct TelemetryGuard(Option<SdkTracerProvider>);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

/// The log filter for `RUST_LOG` (`info` when unset). lapin logs every
/// message a broker returns at `warn`, body and all; the bus publishes
/// nothing `mandatory`, so none should come back, and should one, its body
/// (an event: tenant data) is kept out of the logs unless `RUST_LOG` names
/// lapin itself.
fn directives(rust_log: Option<&str>) -> String {
    let base = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    if base.contains("lapin") {
        base.to_owned()
    } else {
        format!("{base},lapin::returned_messages=error")
    }
}

/// Installs the global subscriber for `service` (once per process; later
/// calls, as in tests, keep the first).
pub fn init(service: &'static str, config: &Config) -> TelemetryGuard {
    let filter = EnvFilter::try_new(directives(std::env::var("RUST_LOG").ok().as_deref()))
        .unwrap_or_else(|_| EnvFilter::new(directives(None)));
    let fmt = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_target(false)
            .boxed(),
    };
    let (otel_layer, provider) = match &config.otel_exporter_otlp_endpoint {
        Some(endpoint) => match tracer_provider(service, endpoint) {
            Ok(p) => {
                let tracer = p.tracer(service);
                opentelemetry::global::set_text_map_propagator(
                    opentelemetry_sdk::propagation::TraceContextPropagator::new(),
                );
                opentelemetry::global::set_tracer_provider(p.clone());
                (
                    Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                    Some(p),
                )
            }
            Err(e) => {
                eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: could not set up trace export: {e}");
                (None, None)
            }
        },
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel_layer)
        .try_init();
    TelemetryGuard(provider)
}

fn tracer_provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn lapins_per_message_return_warning_is_off_unless_asked_for() {
        assert_eq!(directives(None), "info,lapin::returned_messages=error");
        assert_eq!(directives(Some(" ")), "info,lapin::returned_messages=error");
        assert_eq!(
            directives(Some("warn")),
            "warn,lapin::returned_messages=error"
        );
        assert_eq!(directives(Some("debug,lapin=trace")), "debug,lapin=trace");
        assert!(tracing_subscriber::EnvFilter::try_new(directives(Some("warn"))).is_ok());
    }
}

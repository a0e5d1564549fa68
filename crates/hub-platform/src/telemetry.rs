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

/// Installs the global subscriber for `service` (once per process; later
/// calls, as in tests, keep the first).
pub fn init(service: &'static str, config: &Config) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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

-- The Integration Hub schema, exactly as written in spec/004 (Database Schema).
-- Additions live in later migrations so this file stays comparable to the spec.

-- Integration Providers (pre-built connectors)
CREATE TABLE integration_providers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    code VARCHAR(50) NOT NULL UNIQUE,        -- DAT, TRUCKSTOP, QUICKBOOKS, etc.
    name VARCHAR(200) NOT NULL,
    category VARCHAR(50) NOT NULL,           -- LOAD_BOARD, ACCOUNTING, ELD, CRM, RATING
    description TEXT,

    -- Configuration Schema
    config_schema JSONB NOT NULL,            -- JSON schema for required config fields
    auth_type VARCHAR(50) NOT NULL,          -- API_KEY, OAUTH2, BASIC, NONE
    oauth_config JSONB,                      -- OAuth URLs, scopes, etc.

    -- Endpoints
    base_url VARCHAR(500),
    api_version VARCHAR(20),
    documentation_url VARCHAR(500),

    -- Capabilities
    supports_webhooks BOOLEAN DEFAULT false,
    supports_batch BOOLEAN DEFAULT false,
    supports_realtime BOOLEAN DEFAULT false,

    -- Rate Limits
    rate_limit_requests INTEGER,             -- Max requests per window
    rate_limit_window INTEGER,               -- Window in seconds

    -- Status
    status VARCHAR(20) DEFAULT 'ACTIVE',     -- ACTIVE, DEPRECATED, COMING_SOON

    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Tenant Integration Instances
CREATE TABLE integrations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    provider_id UUID NOT NULL REFERENCES integration_providers(id),

    -- Identity
    name VARCHAR(200) NOT NULL,
    description TEXT,

    -- Configuration
    config JSONB NOT NULL,                   -- Provider-specific config (encrypted sensitive fields)
    environment VARCHAR(20) DEFAULT 'PRODUCTION', -- PRODUCTION, SANDBOX, TEST

    -- Authentication
    auth_type VARCHAR(50) NOT NULL,
    api_key_encrypted TEXT,                  -- Encrypted API key
    oauth_tokens JSONB,                      -- Encrypted access/refresh tokens
    oauth_expires_at TIMESTAMPTZ,

    -- Status
    status VARCHAR(20) DEFAULT 'ACTIVE',     -- ACTIVE, PAUSED, ERROR, PENDING_AUTH
    last_successful_call TIMESTAMPTZ,
    last_error TEXT,
    last_error_at TIMESTAMPTZ,
    error_count INTEGER DEFAULT 0,

    -- Settings
    is_enabled BOOLEAN DEFAULT true,
    retry_enabled BOOLEAN DEFAULT true,
    max_retries INTEGER DEFAULT 3,
    timeout_seconds INTEGER DEFAULT 30,

    -- Sync Settings
    sync_frequency VARCHAR(50),              -- REALTIME, HOURLY, DAILY, MANUAL
    last_sync_at TIMESTAMPTZ,
    next_sync_at TIMESTAMPTZ,

    -- Migration Support
    external_id VARCHAR(100),
    source_system VARCHAR(50),
    custom_fields JSONB DEFAULT '{}',

    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    created_by UUID REFERENCES users(id),
    updated_by UUID REFERENCES users(id),

    UNIQUE(tenant_id, provider_id, environment)
);

CREATE INDEX idx_integrations_tenant ON integrations(tenant_id);
CREATE INDEX idx_integrations_provider ON integrations(provider_id);
CREATE INDEX idx_integrations_status ON integrations(tenant_id, status);

-- Webhook Endpoints (inbound)
CREATE TABLE webhook_endpoints (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    integration_id UUID REFERENCES integrations(id),

    -- Endpoint Configuration
    endpoint_path VARCHAR(200) NOT NULL,     -- /webhooks/{tenant}/{path}
    secret_key TEXT NOT NULL,                -- For signature verification

    -- Event Handling
    event_types JSONB NOT NULL DEFAULT '[]', -- Events this endpoint handles
    handler_type VARCHAR(50) NOT NULL,       -- LOAD_STATUS, TRACKING, INVOICE, CUSTOM

    -- Processing
    transform_template JSONB,                -- Data transformation rules
    target_service VARCHAR(50),              -- Internal service to route to

    -- Security
    ip_whitelist JSONB,                      -- Allowed source IPs
    signature_header VARCHAR(100),           -- Header containing signature
    signature_algorithm VARCHAR(50),         -- HMAC-SHA256, etc.

    -- Status
    status VARCHAR(20) DEFAULT 'ACTIVE',     -- ACTIVE, PAUSED, DISABLED
    is_enabled BOOLEAN DEFAULT true,

    -- Stats
    total_received INTEGER DEFAULT 0,
    total_processed INTEGER DEFAULT 0,
    total_failed INTEGER DEFAULT 0,
    last_received_at TIMESTAMPTZ,

    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),

    UNIQUE(tenant_id, endpoint_path)
);

CREATE INDEX idx_webhooks_tenant ON webhook_endpoints(tenant_id);
CREATE INDEX idx_webhooks_integration ON webhook_endpoints(integration_id);

-- Webhook Subscriptions (outbound)
CREATE TABLE webhook_subscriptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id),

    -- Subscription Details
    name VARCHAR(200) NOT NULL,
    description TEXT,
    url VARCHAR(500) NOT NULL,               -- Target URL

    -- Events
    event_types JSONB NOT NULL DEFAULT '[]', -- ORDER_CREATED, LOAD_DELIVERED, etc.

    -- Authentication
    auth_type VARCHAR(50) DEFAULT 'NONE',    -- NONE, BASIC, API_KEY, OAUTH2, HMAC
    auth_config JSONB,                       -- Auth-specific configuration
    secret_key TEXT,                         -- For HMAC signing

    -- Delivery Settings
    content_type VARCHAR(50) DEFAULT 'application/json',
    headers JSONB DEFAULT '{}',              -- Custom headers
    transform_template JSONB,                -- Payload transformation

    -- Retry Policy
    retry_enabled BOOLEAN DEFAULT true,
    max_retries INTEGER DEFAULT 5,
    retry_intervals JSONB DEFAULT '[60, 300, 900, 3600, 7200]', -- Seconds

    -- Status
    status VARCHAR(20) DEFAULT 'ACTIVE',     -- ACTIVE, PAUSED, FAILED
    is_enabled BOOLEAN DEFAULT true,

    -- Stats
    total_sent INTEGER DEFAULT 0,
    total_delivered INTEGER DEFAULT 0,
    total_failed INTEGER DEFAULT 0,
    last_triggered_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ,
    consecutive_failures INTEGER DEFAULT 0,

    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    created_by UUID REFERENCES users(id)
);

CREATE INDEX idx_webhook_subs_tenant ON webhook_subscriptions(tenant_id);
CREATE INDEX idx_webhook_subs_events ON webhook_subscriptions USING GIN(event_types);

-- Webhook Delivery Log
CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id UUID NOT NULL REFERENCES webhook_subscriptions(id),

    -- Event Details
    event_type VARCHAR(100) NOT NULL,
    event_id UUID NOT NULL,                  -- Reference to source event
    payload JSONB NOT NULL,

    -- Delivery Attempt
    attempt_number INTEGER DEFAULT 1,

    -- Request
    request_url VARCHAR(500) NOT NULL,
    request_headers JSONB,
    request_body TEXT,

    -- Response
    response_status INTEGER,
    response_headers JSONB,
    response_body TEXT,
    response_time_ms INTEGER,

    -- Status
    status VARCHAR(20) NOT NULL,             -- PENDING, DELIVERED, FAILED, RETRYING
    error_message TEXT,
    next_retry_at TIMESTAMPTZ,

    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_webhook_del_subscription ON webhook_deliveries(subscription_id);
CREATE INDEX idx_webhook_del_status ON webhook_deliveries(status, next_retry_at);
CREATE INDEX idx_webhook_del_created ON webhook_deliveries(created_at);

-- API Request Log
CREATE TABLE api_request_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID REFERENCES tenants(id),
    integration_id UUID REFERENCES integrations(id),

    -- Request Details
    direction VARCHAR(10) NOT NULL,          -- INBOUND, OUTBOUND
    method VARCHAR(10) NOT NULL,
    url VARCHAR(1000) NOT NULL,
    path VARCHAR(500),
    query_params JSONB,
    headers JSONB,
    body TEXT,
    body_size INTEGER,

    -- Response Details
    response_status INTEGER,
    response_headers JSONB,
    response_body TEXT,
    response_size INTEGER,
    response_time_ms INTEGER,

    -- Context
    correlation_id VARCHAR(100),             -- Track related requests
    user_id UUID REFERENCES users(id),
    source_ip VARCHAR(45),

    -- Result
    status VARCHAR(20) NOT NULL,             -- SUCCESS, CLIENT_ERROR, SERVER_ERROR, TIMEOUT
    error_message TEXT,
    retry_of UUID REFERENCES api_request_logs(id),

    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_api_logs_tenant ON api_request_logs(tenant_id, created_at DESC);
CREATE INDEX idx_api_logs_integration ON api_request_logs(integration_id, created_at DESC);
CREATE INDEX idx_api_logs_correlation ON api_request_logs(correlation_id);
CREATE INDEX idx_api_logs_status ON api_request_logs(status, created_at DESC);

-- Data Transformation Templates
CREATE TABLE transformation_templates (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID REFERENCES tenants(id),   -- NULL for system templates

    -- Identity
    code VARCHAR(50) NOT NULL,
    name VARCHAR(200) NOT NULL,
    description TEXT,

    -- Transformation
    source_format VARCHAR(50) NOT NULL,      -- JSON, XML, CSV, X12
    target_format VARCHAR(50) NOT NULL,
    mapping_rules JSONB NOT NULL,            -- Field mapping configuration
    validation_rules JSONB,                  -- Input validation

    -- Type
    is_system BOOLEAN DEFAULT false,         -- System vs tenant template
    category VARCHAR(50),                    -- LOAD, CARRIER, INVOICE, etc.

    -- Version Control
    version INTEGER DEFAULT 1,
    is_active BOOLEAN DEFAULT true,

    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_transform_tenant ON transformation_templates(tenant_id);

-- Sync Jobs (batch processing)
CREATE TABLE sync_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    integration_id UUID NOT NULL REFERENCES integrations(id),

    -- Job Configuration
    job_type VARCHAR(50) NOT NULL,           -- FULL_SYNC, INCREMENTAL, EXPORT, IMPORT
    entity_type VARCHAR(50) NOT NULL,        -- LOADS, CARRIERS, INVOICES, etc.
    direction VARCHAR(10) NOT NULL,          -- INBOUND, OUTBOUND

    -- Filters
    filters JSONB,                           -- Date range, status, etc.

    -- Progress
    status VARCHAR(20) DEFAULT 'PENDING',    -- PENDING, RUNNING, COMPLETED, FAILED, CANCELLED
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,

    -- Results
    total_records INTEGER DEFAULT 0,
    processed_records INTEGER DEFAULT 0,
    success_count INTEGER DEFAULT 0,
    error_count INTEGER DEFAULT 0,
    error_details JSONB,                     -- Array of errors

    -- Scheduling
    scheduled_by VARCHAR(20),                -- MANUAL, SCHEDULED, TRIGGER
    scheduled_at TIMESTAMPTZ,

    created_at TIMESTAMPTZ DEFAULT NOW(),
    created_by UUID REFERENCES users(id)
);

CREATE INDEX idx_sync_jobs_tenant ON sync_jobs(tenant_id);
CREATE INDEX idx_sync_jobs_integration ON sync_jobs(integration_id);
CREATE INDEX idx_sync_jobs_status ON sync_jobs(status, scheduled_at);

-- Circuit Breaker State
CREATE TABLE circuit_breaker_state (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id UUID NOT NULL REFERENCES integrations(id) UNIQUE,

    -- State
    state VARCHAR(20) DEFAULT 'CLOSED',      -- CLOSED, OPEN, HALF_OPEN
    failure_count INTEGER DEFAULT 0,
    success_count INTEGER DEFAULT 0,

    -- Thresholds
    failure_threshold INTEGER DEFAULT 5,
    success_threshold INTEGER DEFAULT 3,     -- Successes needed to close from half-open
    timeout_seconds INTEGER DEFAULT 60,      -- Time before moving to half-open

    -- Timing
    last_failure_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    opened_at TIMESTAMPTZ,
    half_open_at TIMESTAMPTZ,

    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Rate Limit Tracking
CREATE TABLE rate_limit_buckets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id UUID NOT NULL REFERENCES integrations(id),

    -- Bucket Details
    bucket_key VARCHAR(200) NOT NULL,        -- Unique key for this limit
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,

    -- Counts
    request_count INTEGER DEFAULT 0,
    max_requests INTEGER NOT NULL,

    -- Status
    is_exceeded BOOLEAN DEFAULT false,

    UNIQUE(integration_id, bucket_key, window_start)
);

CREATE INDEX idx_rate_limit_integration ON rate_limit_buckets(integration_id, window_end);

-- Merchants' webhook signing secrets sealed like customers' personal data (`v1:<key id>:…`,
-- associated data `webhook_endpoint.secret:<endpoint id>`). A SQL migration cannot seal (the
-- key is in the configuration, not the database): rows stored before this one keep their
-- secret in clear with `secret_sealed = 0`, and the payment service seals them when it
-- starts with privacy keys (`PaymentService::seal_webhook_secrets`), each row changed only
-- while it is still unsealed. New endpoints are stored sealed.
ALTER TABLE webhook_endpoints ADD COLUMN secret_sealed BIGINT NOT NULL DEFAULT 0;
